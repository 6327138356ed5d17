//! A simulated Logos Delivery network: every publish is kept in a history (as a
//! store node keeps it) and pushed to online subscribers; a node that comes back
//! online, or subscribes to a new topic, catches up from the history, as the
//! driver does with a store query.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::core::{Client, Effects, Event};

/// The store key a simulated node's storage is sealed with.
pub fn store_key(seed: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&seed.to_le_bytes());
    k
}

/// What a driver committed for one node: (store, key) → sealed value.
#[derive(Default)]
pub struct Disk(pub BTreeMap<(String, Vec<u8>), Vec<u8>>);

impl Disk {
    /// Applies one call's storage operations, as a driver's transaction does.
    pub fn commit(&mut self, fx: &Effects) {
        for op in &fx.store {
            let k = (op.store.to_owned(), op.key.clone());
            match &op.value {
                Some(v) => self.0.insert(k, v.clone()),
                None => self.0.remove(&k),
            };
        }
    }

    /// The records a driver hands to `Client::restore` at start.
    pub fn start_records(&self) -> Vec<crate::core::store::LoadedRecord> {
        self.0
            .iter()
            .filter(|((s, _), _)| {
                crate::core::store::Store::from_name(s).is_some_and(|s| s.loaded_at_start())
            })
            .map(|((s, k), v)| (s.clone(), k.clone(), v.clone()))
            .collect()
    }
}

/// One published message.
#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub sent_at: u64,
}

pub struct Node {
    pub client: Client,
    pub seed: u64,
    /// What the driver committed.
    pub disk: Disk,
    pub online: bool,
    pub subs: BTreeSet<String>,
    pub queue: VecDeque<Msg>,
    pub events: Vec<Event>,
    /// When the client asked to be ticked.
    pub wake: Option<u64>,
    /// Directory reads the client asked for (`Effects::lookups`).
    pub lookups: usize,
}

#[derive(Default)]
pub struct Net {
    pub history: Vec<Msg>,
    pub nodes: Vec<Node>,
    pub now: u64,
    pub publishes: usize,
    /// Distinct messages published per content topic (a re-sent copy counts once).
    pub published_on: BTreeMap<String, usize>,
    published_digests: std::collections::HashSet<[u8; 32]>,
    /// Partition: node → side; messages cross sides only through the history later.
    pub side: BTreeMap<usize, u8>,
    /// A chat-store registry for the nodes that use one (`Client::set_registry`).
    pub registry: SimRegistry,
}

/// A chat-store registry as the HTTP API keeps it: the newest record per id, in libchat's
/// fields (`payload`, `signature`), and calls that fail while `failing` lasts.
#[derive(Default)]
pub struct SimRegistry {
    pub accounts: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
    pub key_packages: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
    /// How many calls fail before the registry answers again (`u32::MAX`: never).
    pub failing: u32,
    /// Every call, with the time the core let it start (ms).
    pub calls: Vec<crate::core::directory::registry::Request>,
    /// What a hostile registry hands back instead of what it holds.
    pub tamper: Option<Box<Tamper>>,
}

/// A record as a registry holds it: (payload, signature).
pub type RegistryRecord = (Vec<u8>, Vec<u8>);
/// What a hostile registry does to a record before it hands it back (given the id asked).
pub type Tamper = dyn FnMut(&str, RegistryRecord) -> RegistryRecord;

impl SimRegistry {
    /// Runs one request as the driver does.
    pub fn run(
        &mut self,
        r: &crate::core::directory::registry::Request,
    ) -> crate::core::directory::registry::Outcome {
        use crate::core::directory::registry::{Op, Outcome};
        self.calls.push(r.clone());
        if self.failing > 0 {
            self.failing = self.failing.saturating_sub(u32::from(self.failing != u32::MAX));
            return Outcome::Failed;
        }
        let record = || (r.payload.clone().unwrap_or_default(), r.signature.clone().unwrap_or_default());
        let found = match r.op {
            Op::PutAccount => {
                self.accounts.insert(r.key.clone(), record());
                return Outcome::Stored;
            }
            Op::PutKeyPackage => {
                self.key_packages.insert(r.key.clone(), record());
                return Outcome::Stored;
            }
            Op::GetAccount => self.accounts.get(&r.key).cloned(),
            Op::GetKeyPackage => self.key_packages.get(&r.key).cloned(),
        };
        match (found, self.tamper.as_mut()) {
            (None, _) => Outcome::NotFound,
            (Some(rec), Some(t)) => {
                let (payload, signature) = t(&r.key, rec);
                Outcome::Found { payload, signature }
            }
            (Some((payload, signature)), None) => Outcome::Found { payload, signature },
        }
    }
}

impl Net {
    /// Adds a node with a deterministic RNG and applies its start-up effects.
    pub fn join(&mut self, seed: u64) -> usize {
        self.now += 1;
        let rng = Box::new(ChaCha20Rng::seed_from_u64(seed));
        let (client, fx) = Client::create(rng, &store_key(seed), self.now).unwrap();
        self.add_node(client, seed, fx)
    }

    /// Adds a started client as a node and applies its start-up effects.
    fn add_node(&mut self, client: Client, seed: u64, fx: Effects) -> usize {
        self.nodes.push(Node {
            client,
            seed,
            disk: Disk::default(),
            online: true,
            subs: BTreeSet::new(),
            queue: VecDeque::new(),
            events: vec![],
            wake: None,
            lookups: 0,
        });
        let i = self.nodes.len() - 1;
        self.apply(i, fx);
        i
    }

    pub fn account(&self, i: usize) -> String {
        self.nodes[i].client.account_id().to_hex()
    }

    /// What the driver does with a call's effects: persist, subscribe, publish
    /// (and clear the outbox), look up, emit.
    pub fn apply(&mut self, i: usize, fx: Effects) {
        self.persist(i, &fx);
        for t in fx.subscribe {
            if self.nodes[i].subs.insert(t.clone()) {
                let backlog: Vec<Msg> = self.history.iter().filter(|m| m.topic == t).cloned().collect();
                self.nodes[i].queue.extend(backlog);
            }
        }
        for o in fx.publish {
            // The Logos networks' limit on an encoded message (§5.5), with room for its fields.
            assert!(
                o.payload.len() + o.content_topic.len() + 64 <= 150 * 1024,
                "a publish over the network limit"
            );
            let sent = self.nodes[i].client.outbox_sent(o.outbox_id);
            self.persist(i, &sent);
            self.publishes += 1;
            if self.published_digests.insert(crate::core::client::fx_digest(&o.content_topic, &o.payload)) {
                *self.published_on.entry(o.content_topic.clone()).or_default() += 1;
            }
            let m = Msg { topic: o.content_topic, payload: o.payload, sent_at: self.now };
            self.broadcast(Some(i), m);
        }
        for r in fx.registry {
            self.registry_call(i, r);
        }
        for a in fx.lookups {
            self.nodes[i].lookups += 1;
            self.lookup_accounts(i, std::slice::from_ref(&a));
            let fx = self.nodes[i].client.lookup_complete_at(&a, self.now);
            self.apply(i, fx);
        }
        for e in &fx.events {
            if let Event::HistoryWanted { link, ranges } = e {
                let fx = self.read_history(i, link, ranges, 100);
                self.apply(i, fx);
            }
        }
        self.nodes[i].events.extend(fx.events);
        if fx.wake_at.is_some() {
            self.nodes[i].wake = fx.wake_at.map(|t| t as u64);
        }
    }

    /// What a driver does with `Event::HistoryWanted`: reads each range's newest `limit`
    /// rows from the node's disk and hands them to `send_history`.
    pub fn read_history(
        &mut self,
        i: usize,
        link: &str,
        ranges: &[crate::core::effects::HistoryRange],
        limit: usize,
    ) -> Effects {
        let mut rows = Vec::new();
        for r in ranges {
            let lo = ("messages".to_owned(), r.from.clone());
            let hi = ("messages".to_owned(), r.to.clone());
            let mut these: Vec<(Vec<u8>, Vec<u8>)> = self.nodes[i]
                .disk
                .0
                .range(lo..=hi)
                .rev()
                .take(limit)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            these.reverse();
            rows.extend(these);
        }
        self.nodes[i].client.send_history(link, &rows).unwrap()
    }

    /// A conversation's stored history at node `i`, oldest first (what `history()` pages).
    pub fn history(&self, i: usize, convo: &str) -> Vec<crate::core::ChatMessage> {
        let (from, to) = self.nodes[i].client.history_range(convo, None).unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = self.nodes[i]
            .disk
            .0
            .range(("messages".to_owned(), from)..=("messages".to_owned(), to))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        self.nodes[i].client.open_messages(&rows).unwrap()
    }

    /// Keeps a message in the history and pushes it to online subscribers (on the
    /// sender's side of a partition).
    pub fn broadcast(&mut self, from: Option<usize>, m: Msg) {
        self.history.push(m.clone());
        let from = from.and_then(|i| self.side.get(&i).copied());
        for (j, n) in self.nodes.iter_mut().enumerate() {
            let same_side = from.is_none() || self.side.get(&j).copied() == from;
            if n.online && same_side && n.subs.contains(&m.topic) {
                n.queue.push_back(m.clone());
            }
        }
    }

    /// A new device linked to `existing`'s account with a code from it, as the driver
    /// of `chat({ link })` does: publish the request, wait for the grant on the link's
    /// topic, start the installation. Returns the new node.
    pub fn link(&mut self, existing: usize, seed: u64) -> usize {
        self.now += 1;
        let (code, fx) = self.nodes[existing].client.create_link(self.now).unwrap();
        self.apply(existing, fx);
        self.link_with(&code, seed).unwrap()
    }

    /// [`Net::link`] with a given code: the error when no grant opens.
    pub fn link_with(&mut self, code: &str, seed: u64) -> crate::core::Result<usize> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x11);
        let (linking, fx) = crate::core::client::Linking::start(&mut rng, code)?;
        for o in fx.publish {
            let m = Msg { topic: o.content_topic, payload: o.payload, sent_at: self.now };
            self.broadcast(None, m);
        }
        self.run();
        let topic = linking.topic();
        let mut grant = None;
        for m in self.history.iter().filter(|m| m.topic == topic) {
            if let Some(g) = linking.open_grant(&m.payload)? {
                grant = Some(g);
                break;
            }
        }
        let grant = grant.ok_or(crate::core::CoreError::InvalidLink("no grant"))?;
        self.now += 1;
        let rng = Box::new(ChaCha20Rng::seed_from_u64(seed));
        let (client, fx) = Client::from_link(rng, &store_key(seed), linking, &grant, self.now)?;
        let i = self.add_node(client, seed, fx);
        self.run();
        Ok(i)
    }

    /// A new device restored from a recovery secret, as the driver of `chat({ recover })`
    /// does: read the account topic, then start the installation.
    pub fn recover(&mut self, secret: &str, seed: u64) -> crate::core::Result<usize> {
        let topics = Client::recovery_topics(secret)?;
        let records: Vec<Vec<u8>> =
            self.history.iter().filter(|m| topics.contains(&m.topic)).map(|m| m.payload.clone()).collect();
        self.now += 1;
        let rng = Box::new(ChaCha20Rng::seed_from_u64(seed));
        let (client, fx) = Client::recover(rng, &store_key(seed), secret, &records, self.now)?;
        let i = self.add_node(client, seed, fx);
        self.run();
        Ok(i)
    }

    /// Moves the virtual clock forward by `ms`, ticking every node whose timer falls due
    /// and delivering what that produces, in time order.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        loop {
            self.run();
            let next = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].online)
                .filter_map(|i| self.nodes[i].wake.map(|t| (t, i)))
                .filter(|(t, _)| *t <= end)
                .min();
            let Some((t, i)) = next else { break };
            self.now = self.now.max(t);
            self.nodes[i].wake = None;
            let fx = self.nodes[i].client.tick(self.now);
            self.apply(i, fx);
        }
        self.now = end;
        self.run();
    }

    /// Splits the network: nodes in `a` and the rest see only their own side's traffic.
    pub fn partition(&mut self, a: &[usize]) {
        for i in 0..self.nodes.len() {
            self.side.insert(i, u8::from(!a.contains(&i)));
        }
    }

    /// Heals a partition: every node catches up from the history, as after a reconnect.
    pub fn heal(&mut self) {
        self.side.clear();
        for i in 0..self.nodes.len() {
            if self.nodes[i].online {
                self.set_online(i, true);
            }
        }
    }

    pub fn persist(&mut self, i: usize, fx: &Effects) {
        self.nodes[i].disk.commit(fx);
    }

    /// Stops node `i` (its queue is lost) and starts it again from its disk.
    pub fn restart(&mut self, i: usize) {
        self.now += 1;
        let records = self.nodes[i].disk.start_records();
        let seed = self.nodes[i].seed;
        let rng = Box::new(ChaCha20Rng::seed_from_u64(seed ^ self.now));
        let (client, fx) = Client::restore(rng, &store_key(seed), records, self.now).unwrap();
        let node = &mut self.nodes[i];
        node.client = client;
        node.subs.clear();
        node.queue.clear();
        self.apply(i, fx);
        let fx = self.nodes[i].client.announce(self.now).unwrap();
        self.apply(i, fx);
    }

    /// Every directory record published so far as libchat's plain record (topic and
    /// submission): sealed ones opened with the account of whichever node they belong to.
    pub fn plain_directory(&self) -> Vec<(String, Vec<u8>)> {
        use crate::core::directory::{sealed, ACCOUNT_TOPIC, KEYPACKAGE_TOPIC};
        let accounts: Vec<_> = self.nodes.iter().map(|n| n.client.account_id()).collect();
        let mut out = Vec::new();
        for m in &self.history {
            if Client::directory_topics().contains(&m.topic.as_str()) {
                out.push((m.topic.clone(), m.payload.clone()));
                continue;
            }
            for a in &accounts {
                if let Ok((kind, inner)) = sealed::open(a, &m.topic, &m.payload) {
                    let topic = if kind == sealed::Kind::Bundle { ACCOUNT_TOPIC } else { KEYPACKAGE_TOPIC };
                    out.push((topic.to_owned(), inner));
                    break;
                }
            }
        }
        out
    }

    /// A directory lookup of every node's account (what a driver does before a call
    /// that names accounts).
    pub fn lookup(&mut self, i: usize) {
        let accounts: Vec<String> = self.nodes.iter().map(|n| n.client.account_id().to_hex()).collect();
        self.lookup_accounts(i, &accounts);
    }

    /// Runs a registry request and what follows from it (a retry waits its back-off on
    /// the virtual clock).
    pub fn registry_call(&mut self, i: usize, r: crate::core::directory::registry::Request) {
        self.now = self.now.max(r.not_before_ms as u64);
        let outcome = self.registry.run(&r);
        let fx = self.nodes[i].client.registry_result(r.id, outcome, self.now);
        self.apply(i, fx);
    }

    /// A directory lookup as the driver does it (see [`lookup_from`]); from the registry
    /// for a node that uses one.
    pub fn lookup_accounts(&mut self, i: usize, accounts: &[String]) {
        if self.nodes[i].client.uses_registry() {
            let refs: Vec<&str> = accounts.iter().map(String::as_str).collect();
            for r in self.nodes[i].client.registry_lookup(&refs) {
                self.registry_call(i, r);
            }
            return;
        }
        let stored: Vec<(String, Vec<u8>)> =
            self.history.iter().map(|m| (m.topic.clone(), m.payload.clone())).collect();
        lookup_from(&mut self.nodes[i].client, accounts, &stored);
    }

    pub fn start_direct(&mut self, i: usize, peer: &str) -> crate::core::Result<String> {
        self.lookup(i);
        self.now += 1;
        let (id, fx) = self.nodes[i].client.start_direct(peer, self.now)?;
        self.apply(i, fx);
        Ok(id)
    }

    pub fn send(&mut self, i: usize, convo: &str, text: &str) -> String {
        self.now += 1;
        let (id, fx) = self.nodes[i].client.send(convo, text.as_bytes(), self.now).unwrap();
        self.apply(i, fx);
        id
    }

    /// Delivers queued messages until the network is quiet.
    pub fn run(&mut self) {
        loop {
            let Some(i) =
                (0..self.nodes.len()).find(|&i| self.nodes[i].online && !self.nodes[i].queue.is_empty())
            else {
                return;
            };
            let m = self.nodes[i].queue.pop_front().unwrap();
            self.now += 1;
            let fx = self.nodes[i].client.receive(&m.topic, &m.payload, m.sent_at, self.now);
            self.apply(i, fx);
        }
    }

    pub fn set_online(&mut self, i: usize, online: bool) {
        self.nodes[i].online = online;
        if online {
            // Reconnect: a store query over every subscribed topic.
            let subs = self.nodes[i].subs.clone();
            let backlog: Vec<Msg> =
                self.history.iter().filter(|m| subs.contains(&m.topic)).cloned().collect();
            self.nodes[i].queue.extend(backlog);
        }
    }

    /// Texts of the messages node `i` received, with sender accounts.
    pub fn texts(&self, i: usize) -> Vec<(Option<String>, String)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => {
                    Some((m.sender.account_id.clone(), String::from_utf8_lossy(&m.content).into_owned()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self, i: usize) -> Vec<String> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Error { code, .. } => Some(code.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// A directory lookup as the driver does it: read from `stored` (topic, payload) the
/// topics the client names, ingest, and again while new topics come.
pub fn lookup_from(client: &mut Client, accounts: &[String], stored: &[(String, Vec<u8>)]) {
    let refs: Vec<&str> = accounts.iter().map(String::as_str).collect();
    let mut read = std::collections::HashSet::new();
    loop {
        let topics: Vec<String> =
            client.lookup_topics(&refs).into_iter().filter(|t| !read.contains(t)).collect();
        if topics.is_empty() {
            break;
        }
        for (topic, payload) in stored.iter().filter(|(t, _)| topics.contains(t)) {
            let _ = client.ingest_directory(topic, payload);
        }
        read.extend(topics);
    }
}
