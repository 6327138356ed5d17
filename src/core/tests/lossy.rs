//! A deterministic lossy network for the core, and R1 scenarios on it.
//!
//! Seeded: live pushes are dropped, delayed (so reordered) and duplicated; the store
//! keeps each publish only with some probability; any client can crash and restart
//! from what it persisted; time is virtual. The simulator only executes what the core
//! asks for (publish, subscribe, store queries, lookups, timers): retries, repair and
//! re-sending are the core's policy, so this tests the policy that ships. A failing run
//! names its seed; `LOSSY_SEED=n cargo test --lib lossy` replays it exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::sim::{store_key, Disk};
use crate::core::{Client, Effects, Event};

/// How hostile the network is.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// Probability that a live push to one subscriber is lost.
    pub loss: f64,
    /// Probability that a live push is delivered twice.
    pub dup: f64,
    /// Most delay of a live push (ms); pushes are reordered within it.
    pub max_delay: u64,
    /// Probability that the store misses a publish (chat topics only).
    pub store_miss: f64,
}

#[derive(Clone, Debug)]
struct Msg {
    topic: String,
    payload: Vec<u8>,
    sent_at: u64,
}

struct Node {
    client: Client,
    seed: u64,
    disk: Disk,
    online: bool,
    subs: BTreeSet<String>,
    wake: Option<u64>,
    /// (conversation, message id) of every message the app was handed, in order.
    delivered: Vec<(String, String)>,
    delivered_set: HashSet<(String, String)>,
    lost: HashSet<(String, String)>,
    missing: Vec<(String, String, Option<String>)>,
    restarts: u32,
    /// Every live push to it is lost (it stays up, subscribed, its timers run).
    deaf: bool,
}

/// What the simulator knows of every sent message: who sent it, and what its sender had
/// delivered or sent before (the happened-before set).
struct Sent {
    sender: usize,
    conversation: String,
    before: HashSet<String>,
    /// The nodes in the conversation when it was sent (a later joiner cannot read it).
    audience: HashSet<usize>,
}

pub struct LossyNet {
    rng: ChaCha20Rng,
    faults: Faults,
    pub now: u64,
    nodes: Vec<Node>,
    store: Vec<Msg>,
    timeline: BTreeMap<(u64, u64), (usize, Msg)>,
    seq: u64,
    sent: HashMap<String, Sent>,
    pub publishes: usize,
    /// Bytes of those publishes.
    pub published_bytes: usize,
}

impl LossyNet {
    pub fn new(seed: u64, faults: Faults) -> Self {
        LossyNet {
            rng: ChaCha20Rng::seed_from_u64(seed),
            faults,
            now: 1_000,
            nodes: Vec::new(),
            store: Vec::new(),
            timeline: BTreeMap::new(),
            seq: 0,
            sent: HashMap::new(),
            publishes: 0,
            published_bytes: 0,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    pub fn join(&mut self, seed: u64) -> usize {
        let rng = Box::new(ChaCha20Rng::seed_from_u64(seed));
        let (client, fx) = Client::create(rng, &store_key(seed), self.now).unwrap();
        self.nodes.push(Node {
            client,
            seed,
            disk: Disk::default(),
            online: true,
            subs: BTreeSet::new(),
            wake: None,
            delivered: Vec::new(),
            delivered_set: HashSet::new(),
            lost: HashSet::new(),
            missing: Vec::new(),
            restarts: 0,
            deaf: false,
        });
        let i = self.nodes.len() - 1;
        self.apply(i, fx);
        i
    }

    pub fn account(&self, i: usize) -> String {
        self.nodes[i].client.account_id().to_hex()
    }

    pub fn installation(&self, i: usize) -> String {
        self.nodes[i].client.installation_id().to_hex()
    }

    pub fn client(&mut self, i: usize) -> &mut Client {
        &mut self.nodes[i].client
    }

    /// A store query: everything the store kept on `topic` since `since`.
    fn query(&mut self, i: usize, topic: &str, since: Option<u64>) {
        let found: Vec<Msg> = self
            .store
            .iter()
            .filter(|m| m.topic == topic && since.is_none_or(|s| m.sent_at >= s))
            .cloned()
            .collect();
        for m in found {
            let fx = self.nodes[i].client.receive(&m.topic, &m.payload, m.sent_at, self.now);
            self.apply(i, fx);
        }
        let fx = self.nodes[i].client.query_done(topic, true, self.now);
        self.apply(i, fx);
    }

    /// Executes a call's effects as a driver does.
    pub fn apply(&mut self, i: usize, fx: Effects) {
        self.nodes[i].disk.commit(&fx);
        for t in fx.subscribe {
            if self.nodes[i].subs.insert(t.clone()) {
                let since = self.nodes[i].client.catch_up_since(&t);
                self.query(i, &t, since);
            }
        }
        for o in fx.publish {
            let sent = self.nodes[i].client.outbox_sent(o.outbox_id);
            self.apply(i, sent);
            self.publishes += 1;
            self.published_bytes += o.payload.len();
            let m = Msg { topic: o.content_topic, payload: o.payload, sent_at: self.now };
            let directory = Client::is_directory_topic(&m.topic);
            if directory || !self.chance(self.faults.store_miss) {
                self.store.push(m.clone());
            }
            for j in 0..self.nodes.len() {
                if !self.nodes[j].subs.contains(&m.topic)
                    || self.nodes[j].deaf
                    || self.chance(self.faults.loss)
                {
                    continue;
                }
                let copies = if self.chance(self.faults.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let delay = 1 + self.rng.next_u64() % self.faults.max_delay.max(1);
                    self.seq += 1;
                    self.timeline.insert((self.now + delay, self.seq), (j, m.clone()));
                }
            }
        }
        for a in fx.lookups {
            self.read_directory(i);
            let fx = self.nodes[i].client.lookup_complete(&a);
            self.apply(i, fx);
        }
        for q in fx.queries {
            self.query(i, &q.content_topic, q.since_ms.map(|s| s as u64));
        }
        for e in fx.events {
            self.record(i, e);
        }
        if let Some(t) = fx.wake_at {
            self.nodes[i].wake = Some(t as u64);
        }
    }

    /// Records an event and checks the R1 invariants as it happens.
    fn record(&mut self, i: usize, e: Event) {
        match e {
            Event::Message(m) => {
                let key = (m.conversation_id.clone(), m.id.clone());
                let node = &self.nodes[i];
                assert!(!node.delivered_set.contains(&key), "node {i} got {} twice", m.id);
                if let Some(s) = self.sent.get(&m.id) {
                    assert_eq!(s.conversation, m.conversation_id);
                    for dep in &s.before {
                        if self.sent.get(dep).is_some_and(|d| !d.audience.contains(&i)) {
                            continue; // sent before node i joined
                        }
                        let dk = (m.conversation_id.clone(), dep.clone());
                        assert!(
                            node.delivered_set.contains(&dk) || node.lost.contains(&dk),
                            "node {i} got {} before {dep}, which its sender had seen first",
                            m.id
                        );
                    }
                }
                let node = &mut self.nodes[i];
                node.delivered.push(key.clone());
                node.delivered_set.insert(key);
            }
            Event::Lost { conversation_id, message_id, .. } => {
                self.nodes[i].lost.insert((conversation_id, message_id));
            }
            Event::Missing { conversation_id, message_id, sender } => {
                let installation = sender.map(|s| s.installation_id);
                self.nodes[i].missing.push((conversation_id, message_id, installation));
            }
            _ => {}
        }
    }

    /// Sends a chat message from node `i`.
    pub fn send(&mut self, i: usize, convo: &str, text: &str) -> String {
        let (id, fx) = self.nodes[i].client.send(convo, text.as_bytes(), self.now).unwrap();
        let mut before: HashSet<String> =
            self.nodes[i].delivered.iter().filter(|(c, _)| c == convo).map(|(_, m)| m.clone()).collect();
        before.extend(
            self.sent
                .iter()
                .filter(|(_, s)| s.sender == i && s.conversation == convo)
                .map(|(k, _)| k.clone()),
        );
        let audience =
            (0..self.nodes.len()).filter(|&n| self.nodes[n].client.has_conversation(convo)).collect();
        self.sent.insert(id.clone(), Sent { sender: i, conversation: convo.to_owned(), before, audience });
        let key = (convo.to_owned(), id.clone());
        self.nodes[i].delivered_set.insert(key.clone());
        self.nodes[i].delivered.push(key);
        self.apply(i, fx);
        id
    }

    /// Crashes node `i` (its in-flight pushes are lost) and starts it from its disk.
    pub fn restart(&mut self, i: usize) {
        let records = self.nodes[i].disk.start_records();
        let seed = self.nodes[i].seed;
        self.nodes[i].restarts += 1;
        let rng =
            Box::new(ChaCha20Rng::seed_from_u64(seed ^ (self.now << 8) ^ u64::from(self.nodes[i].restarts)));
        let (client, fx) = Client::restore(rng, &store_key(seed), records, self.now).unwrap();
        self.timeline.retain(|_, (j, _)| *j != i);
        let node = &mut self.nodes[i];
        node.client = client;
        node.subs.clear();
        node.wake = None;
        self.apply(i, fx);
        let fx = self.nodes[i].client.announce(self.now).unwrap();
        self.apply(i, fx);
    }

    /// Loses every live push to node `i` from now on (or stops losing them).
    pub fn set_deaf(&mut self, i: usize, deaf: bool) {
        self.nodes[i].deaf = deaf;
    }

    pub fn set_online(&mut self, i: usize, online: bool) {
        self.nodes[i].online = online;
        if !online {
            self.timeline.retain(|_, (j, _)| *j != i);
            self.nodes[i].subs.clear();
        } else {
            self.restart(i);
        }
    }

    /// Runs the network until `until` (virtual ms): pushes and timers in time order.
    pub fn run_until(&mut self, until: u64) {
        // A node woken again and again at one instant with nothing between is a busy loop
        // (a wake-up the core asks for and then does nothing at): a driver would spin too.
        let mut idle_wakes: (Option<(usize, u64)>, u32) = (None, 0);
        loop {
            let push = self.timeline.keys().next().copied();
            let wake = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].online)
                .filter_map(|i| self.nodes[i].wake.map(|t| (t, i)))
                .min();
            let next_push = push.map(|(t, _)| t).unwrap_or(u64::MAX);
            let next_wake = wake.map(|(t, _)| t).unwrap_or(u64::MAX);
            let t = next_push.min(next_wake);
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            if next_push <= next_wake {
                let Some((k, (j, m))) = self.timeline.pop_first() else { break };
                debug_assert_eq!(k.0, t);
                idle_wakes = (None, 0);
                if self.nodes[j].online {
                    let fx = self.nodes[j].client.receive(&m.topic, &m.payload, m.sent_at, self.now);
                    self.apply(j, fx);
                }
            } else if let Some((_, i)) = wake {
                if idle_wakes.0 == Some((i, self.now)) {
                    idle_wakes.1 += 1;
                    assert!(
                        idle_wakes.1 < 100,
                        "node {i} asks to be woken at {} and does nothing then",
                        self.now
                    );
                } else {
                    idle_wakes = (Some((i, self.now)), 0);
                }
                self.nodes[i].wake = None;
                let fx = self.nodes[i].client.tick(self.now);
                self.apply(i, fx);
            }
        }
        self.now = self.now.max(until);
    }

    /// Messages node `i` was handed in `convo`, in order.
    pub fn delivered(&self, i: usize, convo: &str) -> Vec<String> {
        self.nodes[i].delivered.iter().filter(|(c, _)| c == convo).map(|(_, m)| m.clone()).collect()
    }

    pub fn lost(&self, i: usize) -> &HashSet<(String, String)> {
        &self.nodes[i].lost
    }

    pub fn missing(&self, i: usize) -> &[(String, String, Option<String>)] {
        &self.nodes[i].missing
    }

    /// Every message sent in `convo`.
    pub fn sent_in(&self, convo: &str) -> Vec<(String, usize)> {
        self.sent
            .iter()
            .filter(|(_, s)| s.conversation == convo)
            .map(|(k, s)| (k.clone(), s.sender))
            .collect()
    }

    pub fn random(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }
}

impl LossyNet {
    /// Node `i` proposes adding `members` (it reads the directory first, as a driver does).
    pub fn add_members(&mut self, i: usize, convo: &str, members: &[usize]) -> crate::core::Result<()> {
        self.read_directory(i);
        let accounts: Vec<String> = members.iter().map(|&m| self.account(m)).collect();
        let fx = self.nodes[i].client.add_members(convo, &accounts, self.now)?;
        self.apply(i, fx);
        Ok(())
    }

    /// The accounts node `i` holds as committed members of `convo`.
    pub fn members(&self, i: usize, convo: &str) -> Vec<String> {
        let all = self.nodes[i].client.group_members(convo).unwrap_or_default();
        let mut accounts: Vec<String> =
            all.into_iter().filter(|m| !m.pending).map(|m| m.account_id).collect();
        accounts.sort();
        accounts
    }
}

impl LossyNet {
    /// What a driver does before starting a chat: read the directory for every node's
    /// account, as the driver does (until no new topic comes).
    fn read_directory(&mut self, i: usize) {
        let accounts: Vec<String> = self.nodes.iter().map(|n| n.client.account_id().to_hex()).collect();
        let stored: Vec<(String, Vec<u8>)> =
            self.store.iter().map(|m| (m.topic.clone(), m.payload.clone())).collect();
        super::sim::lookup_from(&mut self.nodes[i].client, &accounts, &stored);
    }

    pub fn start_direct(&mut self, i: usize, peer: &str) -> String {
        self.read_directory(i);
        let (id, fx) = self.nodes[i].client.start_direct(peer, self.now).unwrap();
        self.apply(i, fx);
        id
    }

    pub fn create_group(
        &mut self,
        i: usize,
        members: &[usize],
        config: crate::core::demls::Config,
    ) -> String {
        self.read_directory(i);
        let accounts: Vec<String> = members.iter().map(|&m| self.account(m)).collect();
        let (id, fx) =
            self.nodes[i].client.create_group("team", "", &accounts, Some(config), self.now).unwrap();
        self.apply(i, fx);
        id
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }
}

impl LossyNet {
    /// Hands node `i`'s app a message directly, as a core without causal holds would.
    pub fn deliver_for_tests(&mut self, i: usize, convo: &str, id: &str) {
        let m = crate::core::ChatMessage {
            id: id.to_owned(),
            conversation_id: convo.to_owned(),
            sender: crate::core::SenderInfo { account_id: None, installation_id: String::new() },
            content: Vec::new(),
            content_type: "text/plain".into(),
            reply_to: None,
            remove: false,
            sent_at: 0.0,
            received_at: 0.0,
            outgoing: false,
        };
        self.record(i, Event::Message(m));
    }
}
