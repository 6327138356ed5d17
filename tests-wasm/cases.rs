//! The cases both harnesses run: two installations find each other through
//! directory records and chat both ways through `WasmClient`, the surface the
//! TypeScript driver uses.

use js_sys::{Array, Reflect, Uint8Array};
use logos_chat::wasm::{encoded_message_size_js, pubsub_topic_js, waku_message_hash, WasmClient};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap()
}

fn list(v: &JsValue, key: &str) -> Vec<JsValue> {
    Array::from(&get(v, key)).iter().collect()
}

/// A tiny network: every published message, in order.
#[derive(Default)]
struct Net(Vec<(String, Vec<u8>)>);

impl Net {
    fn publish(&mut self, effects: &JsValue) {
        for out in list(effects, "publish") {
            let topic = get(&out, "contentTopic").as_string().unwrap();
            let payload = Uint8Array::new(&get(&out, "payload")).to_vec();
            self.0.push((topic, payload));
        }
    }
    /// A directory lookup as the driver does it: read the topics the client names, ingest,
    /// and again while new topics come.
    fn lookup(&self, c: &mut WasmClient, accounts: Vec<String>) {
        let mut read: Vec<String> = Vec::new();
        loop {
            let topics: Vec<String> =
                c.lookup_topics(accounts.clone()).into_iter().filter(|t| !read.contains(t)).collect();
            if topics.is_empty() {
                break;
            }
            for (t, p) in self.0.iter().filter(|(t, _)| topics.contains(t)) {
                let _ = c.ingest_directory(t, p);
            }
            read.extend(topics);
        }
    }

    /// Feeds every message to a client, applying what it publishes; returns its events.
    fn deliver(&mut self, c: &mut WasmClient) -> Vec<JsValue> {
        let mut events = vec![];
        let mut i = 0;
        while i < self.0.len() {
            let (t, p) = self.0[i].clone();
            if WasmClient::directory_topics().contains(&t) {
                let _ = c.ingest_directory(&t, &p);
            } else {
                let fx = c.receive(&t, &p, 1.0, 2.0);
                self.publish(&fx);
                events.extend(list(&fx, "events"));
                for a in list(&fx, "lookups") {
                    let a = a.as_string().unwrap();
                    self.lookup(c, vec![a.clone()]);
                    events.extend(list(&c.lookup_complete(&a, None), "events"));
                }
            }
            i += 1;
        }
        events
    }
}

fn texts(events: &[JsValue]) -> Vec<String> {
    events
        .iter()
        .filter(|e| get(e, "type").as_string().as_deref() == Some("message"))
        .map(|e| String::from_utf8(Uint8Array::new(&get(e, "content")).to_vec()).unwrap())
        .collect()
}

#[wasm_bindgen_test]
fn two_installations_chat_both_ways_in_wasm() {
    let mut net = Net::default();
    let mut alice = WasmClient::create(1.0, &[1; 32]).unwrap();
    let mut bob = WasmClient::create(1.0, &[2; 32]).unwrap();
    net.publish(&alice.take_startup_effects());
    net.publish(&bob.take_startup_effects());
    net.deliver(&mut alice);

    net.lookup(&mut alice, vec![bob.account_id()]);
    let started = alice.start_direct(&bob.account_id(), 3.0).unwrap();
    let convo = get(&started, "conversationId").as_string().unwrap();
    net.publish(&get(&started, "effects"));
    let sent = alice.send(&convo, b"hello from wasm", 4.0).unwrap();
    net.publish(&get(&sent, "effects"));

    let events = net.deliver(&mut bob);
    assert!(bob.has_conversation(&convo));
    assert_eq!(texts(&events), vec!["hello from wasm"]);
    let m = events.iter().find(|e| get(e, "type").as_string().as_deref() == Some("message")).unwrap();
    assert_eq!(get(&get(m, "sender"), "accountId").as_string(), Some(alice.account_id()));

    let before = net.0.len();
    let reply = bob.send(&convo, b"hi back", 5.0).unwrap();
    net.publish(&get(&reply, "effects"));
    net.0.drain(..before);
    assert_eq!(texts(&net.deliver(&mut alice)), vec!["hi back"]);
}

#[wasm_bindgen_test]
fn bindings_report_errors_as_codes() {
    assert_eq!(
        get(&WasmClient::create(1.0, &[1; 31]).err().unwrap(), "code").as_string().as_deref(),
        Some("INVALID_ARGUMENT")
    );
    let mut c = WasmClient::create(1.0, &[3; 32]).unwrap();
    let e = c.start_direct("nope", 1.0).err().unwrap();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("INVALID_ARGUMENT"));
    let e = c.start_direct(&"ab".repeat(32), 1.0).err().unwrap();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("UNKNOWN_ACCOUNT"));
    let e = WasmClient::restore(&[3; 32], Array::new(), 1.0).err().unwrap();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("STORE_CORRUPT"));
    let e = c.send("00", b"x", 1.0).err().unwrap();
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("UNKNOWN_CONVERSATION"));
}

/// Bad input from the network is one `error` event and changes nothing: a copy of a real
/// message with its last byte flipped, on the conversation's own topic, writes no
/// record and publishes nothing, and the real message after it is still read.
#[wasm_bindgen_test]
fn a_copied_then_altered_message_is_one_error_event_and_changes_nothing() {
    let mut net = Net::default();
    let mut alice = WasmClient::create(1.0, &[4; 32]).unwrap();
    let mut bob = WasmClient::create(1.0, &[5; 32]).unwrap();
    net.publish(&alice.take_startup_effects());
    net.publish(&bob.take_startup_effects());
    net.deliver(&mut alice);
    net.lookup(&mut alice, vec![bob.account_id()]);
    let started = alice.start_direct(&bob.account_id(), 3.0).unwrap();
    let convo = get(&started, "conversationId").as_string().unwrap();
    net.publish(&get(&started, "effects"));
    net.deliver(&mut bob);
    assert!(bob.has_conversation(&convo));
    net.0.clear();

    let sent = alice.send(&convo, b"the real one", 4.0).unwrap();
    net.publish(&get(&sent, "effects"));
    let (topic, real) = net.0.last().cloned().unwrap();
    let mut altered = real.clone();
    *altered.last_mut().unwrap() ^= 1;
    let fx = bob.receive(&topic, &altered, 4.0, 5.0);
    let events = list(&fx, "events");
    assert_eq!(events.len(), 1, "one event for the altered copy");
    assert_eq!(get(&events[0], "type").as_string().as_deref(), Some("error"));
    assert!(get(&events[0], "code").as_string().is_some_and(|c| !c.is_empty()));
    assert!(list(&fx, "store").is_empty(), "the altered copy wrote a record");
    assert!(list(&fx, "publish").is_empty());

    let fx = bob.receive(&topic, &real, 4.0, 6.0);
    assert_eq!(texts(&list(&fx, "events")), vec!["the real one"]);
}

#[wasm_bindgen_test]
fn waku_helpers_match_vectors() {
    assert_eq!(pubsub_topic_js(2, "/logos-chat/1/c919078a/proto", 8).unwrap(), "/waku/2/rs/2/0");
    let payload = hex_bytes("010203045445535405060708");
    assert_eq!(
        waku_message_hash(
            "/waku/2/default-waku/proto",
            &payload,
            "/waku/2/default-content/proto",
            0x175789bfa23f8400
        ),
        "a2554498b31f5bcdfcbf7fa58ad1c2d45f0254f3f8110a85588ec3cf10720fd8"
    );
    assert!(encoded_message_size_js("/a/1/b/c", 100) > 100);
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The size of this instance's linear memory (bytes).
fn memory_bytes() -> f64 {
    let buffer = js_sys::Reflect::get(&wasm_bindgen::memory(), &JsValue::from_str("buffer")).unwrap();
    js_sys::Reflect::get(&buffer, &JsValue::from_str("byteLength")).unwrap().as_f64().unwrap()
}

/// Issue 12: an MLS message whose length field claims 1 GiB − 1 (the most wasm32's TLS
/// codec allows) used to make the heap allocate it before reading, and wasm memory never
/// shrinks. A thousand such messages must not grow memory by 64 MiB.
#[wasm_bindgen_test]
fn huge_length_claims_do_not_grow_wasm_memory() {
    let start = memory_bytes();
    for wire_format in [1u16, 2, 3, 4, 5] {
        let before = memory_bytes();
        let mut b = vec![0x00, 0x01];
        b.extend_from_slice(&wire_format.to_be_bytes());
        for _ in 0..200 {
            let mut m = b.clone();
            m.extend_from_slice(&[0xbf, 0xff, 0xff, 0xff]);
            m.extend_from_slice(&[0xab; 64]);
            assert!(logos_chat::core::conversation::mls::welcomes_for(&m, &[]).is_err());
        }
        let grown = memory_bytes() - before;
        assert!(
            grown < 16.0 * 1024.0 * 1024.0,
            "wire format {wire_format}: wasm memory grew by {grown} bytes"
        );
    }
    let grown = memory_bytes() - start;
    assert!(grown < 64.0 * 1024.0 * 1024.0, "wasm memory grew by {grown} bytes");
}
