//! Large groups in the whole engine (our `Client`s on the simulated network, X-Wing):
//! P1 at 1,000 members, and 10,000 members for `npm run bench`.

use std::collections::BTreeSet;

use super::sim::Net;

/// What a large-group run measured (printed as JSON for `npm run bench`).
struct BigGroup {
    n: usize,
    create_ms: f64,
    created_bytes: usize,
    largest_welcome: usize,
    joins_ms: f64,
    online: usize,
    send_ms: f64,
    publishes: usize,
}

/// A group of `n` X-Wing members created by one founder in the simulated network, with
/// only `online` joiners running (besides the founder): 999 or 9,999 simulated joins in
/// one process would take minutes to hours, and the others are members all the same. What
/// P1 counts, the sender's publishes, does not depend on how many members run.
fn big_group(n: usize, online: usize) -> BigGroup {
    let mut net = Net::default();
    let nodes: Vec<usize> = (0..n).map(|i| net.join(10_000 + i as u64)).collect();
    let up: Vec<usize> = nodes[n - online..].to_vec();
    for node in &nodes[1..] {
        net.set_online(*node, up.contains(node));
    }
    net.lookup(nodes[0]);
    let accounts: Vec<String> = nodes[1..].iter().map(|m| net.account(*m)).collect();
    let start = net.history.len();
    net.now += 1;
    let t = std::time::Instant::now();
    let (g, fx) = net.nodes[nodes[0]].client.create_group("huge", "", &accounts, None, net.now).unwrap();
    let create_ms = t.elapsed().as_secs_f64() * 1e3;
    net.apply(nodes[0], fx);
    let t = std::time::Instant::now();
    net.run();
    let joins_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(net.member_accounts(nodes[0], &g).len(), n);
    let inboxes: BTreeSet<String> = nodes
        .iter()
        .map(|i| net.nodes[*i].client.installation_id().inbox_topic().as_str().to_owned())
        .collect();
    let created = &net.history[start..];
    let created_bytes = created.iter().map(|m| m.payload.len()).sum();
    let largest_welcome =
        created.iter().filter(|m| inboxes.contains(&m.topic)).map(|m| m.payload.len()).max().unwrap_or(0);
    for i in &up {
        assert_eq!(net.epoch(*i, &g), net.epoch(nodes[0], &g), "node {i} joined");
    }
    let sender = up[0];
    let before = net.publishes;
    let t = std::time::Instant::now();
    net.send(sender, &g, "to everyone");
    let send_ms = t.elapsed().as_secs_f64() * 1e3;
    let publishes = net.publishes - before;
    net.run();
    assert_eq!(net.publishes - before, publishes, "receiving publishes nothing");
    for i in std::iter::once(nodes[0]).chain(up.iter().copied()).filter(|i| *i != sender) {
        assert!(net.texts(i).iter().any(|t| t.1 == "to everyone"), "node {i} read it");
    }
    BigGroup { n, create_ms, created_bytes, largest_welcome, joins_ms, online, send_ms, publishes }
}

impl BigGroup {
    fn json(&self) -> String {
        format!(
            "{{\"engine\":\"X-Wing\",\"n\":{},\"createMs\":{:.0},\"createdBytes\":{},\"welcomeBytes\":{},\"onlineJoiners\":{},\"joinEachMs\":{:.1},\"sendMs\":{:.2},\"publishesPerMessage\":{}}}",
            self.n,
            self.create_ms,
            self.created_bytes,
            self.largest_welcome,
            self.online,
            self.joins_ms / self.online as f64,
            self.send_ms,
            self.publishes
        )
    }
}

/// P1 at N = 1,000: one publish for a message, whatever the size; creation publishes the
/// tree once (about 3 MB in all, where a tree in every Welcome would be 1.6 GB).
#[test]
fn exactly_one_transport_publish_per_group_message_at_1000_members() {
    let r = big_group(1000, 10);
    assert_eq!(r.publishes, 1, "N = 1000: one publish");
    assert!(r.largest_welcome < 8 * 1024, "a Welcome without the tree: {} bytes", r.largest_welcome);
    assert!(r.created_bytes < 16 << 20, "creating 1,000 members publishes {} bytes", r.created_bytes);
    println!("{}", r.json());
}

/// The engine at N = 10,000 (X-Wing). Minutes long, so `npm run bench` runs it
/// (`cargo test --lib -- --ignored --nocapture`) and reports its figures.
#[test]
#[ignore = "minutes long: run by npm run bench"]
fn a_10000_member_group_is_created_and_chats_in_one_publish_per_message() {
    let r = big_group(10_000, 5);
    assert_eq!(r.publishes, 1, "N = 10000: one publish");
    println!("{}", r.json());
}
