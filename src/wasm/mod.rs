//! The wasm-bindgen layer: thin wrappers that convert types and forward to the core.
//!
//! No logic lives here. Each method returns the core's `Effects` as a plain JS
//! object for the TypeScript driver to apply; errors become `{ code, message }`
//! objects that the TypeScript layer turns into `LogosChatError`.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::core::wire::{encoded_message_size, message_hash, pubsub_topic};
use crate::core::{Client, ContentTopic, CoreError, Effects};

#[derive(Serialize)]
struct JsError<'a> {
    code: &'a str,
    message: String,
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    let ser = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    v.serialize(&ser).unwrap_or(JsValue::NULL)
}

fn err(e: CoreError) -> JsValue {
    to_js(&JsError { code: e.code().as_str(), message: e.to_string() })
}

fn ms(t: f64) -> u64 {
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    conversation_id: String,
    effects: Effects,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    message_id: String,
    effects: Effects,
}

/// One installation's chat state, driven from JavaScript.
#[wasm_bindgen]
pub struct WasmClient {
    inner: Client,
}

#[wasm_bindgen]
impl WasmClient {
    /// A new account with its first installation.
    #[wasm_bindgen]
    pub fn create(now: f64) -> Result<WasmClient, JsValue> {
        let (inner, _fx) = Client::create(Box::new(rand_core::OsRng), ms(now)).map_err(err)?;
        Ok(WasmClient { inner })
    }

    /// The account address.
    #[wasm_bindgen(getter, js_name = accountId)]
    pub fn account_id(&self) -> String {
        self.inner.account_id().to_hex()
    }

    /// This installation's id.
    #[wasm_bindgen(getter, js_name = installationId)]
    pub fn installation_id(&self) -> String {
        self.inner.installation_id().to_hex()
    }

    /// Effects that publish this installation to the directory and subscribe its inbox.
    #[wasm_bindgen]
    pub fn announce(&self, now: f64) -> Result<JsValue, JsValue> {
        self.inner.announce(ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// The content topics a directory lookup reads.
    #[wasm_bindgen(js_name = directoryTopics)]
    pub fn directory_topics() -> Vec<String> {
        Client::directory_topics().iter().map(|s| s.to_string()).collect()
    }

    /// Records one directory record; throws `{ code, message }` when it is invalid.
    #[wasm_bindgen(js_name = ingestDirectory)]
    pub fn ingest_directory(&mut self, topic: &str, payload: &[u8]) -> Result<(), JsValue> {
        self.inner.ingest_directory(topic, payload).map_err(err)
    }

    /// A lookup requested in `effects.lookups` is done.
    #[wasm_bindgen(js_name = lookupComplete)]
    pub fn lookup_complete(&mut self, account: &str) -> JsValue {
        to_js(&self.inner.lookup_complete(account))
    }

    /// Starts (or returns) the direct chat with an account: `{ conversationId, effects }`.
    #[wasm_bindgen(js_name = startDirect)]
    pub fn start_direct(&mut self, account: &str, now: f64) -> Result<JsValue, JsValue> {
        let (conversation_id, effects) = self.inner.start_direct(account, ms(now)).map_err(err)?;
        Ok(to_js(&Started { conversation_id, effects }))
    }

    /// Sends bytes to a conversation: `{ messageId, effects }`.
    #[wasm_bindgen]
    pub fn send(&mut self, conversation: &str, content: &[u8], now: f64) -> Result<JsValue, JsValue> {
        let (message_id, effects) = self.inner.send(conversation, content, ms(now)).map_err(err)?;
        Ok(to_js(&Sent { message_id, effects }))
    }

    /// Handles one message from the network; never throws.
    #[wasm_bindgen]
    pub fn receive(&mut self, topic: &str, payload: &[u8], sent_at: f64, now: f64) -> JsValue {
        to_js(&self.inner.receive(topic, payload, ms(sent_at), ms(now)))
    }

    /// Every conversation.
    #[wasm_bindgen]
    pub fn conversations(&self) -> JsValue {
        to_js(&self.inner.conversations())
    }

    /// Whether this client holds the conversation.
    #[wasm_bindgen(js_name = hasConversation)]
    pub fn has_conversation(&self, id: &str) -> bool {
        self.inner.has_conversation(id)
    }
}

/// The 14/WAKU2-MESSAGE hash (hex) of a message with a timestamp in Unix ns.
#[wasm_bindgen(js_name = wakuMessageHash)]
pub fn waku_message_hash(pubsub: &str, payload: &[u8], content_topic: &str, timestamp_ns: i64) -> String {
    hex::encode(message_hash(pubsub, payload, content_topic, None, Some(timestamp_ns)))
}

/// The autosharded pubsub topic of a content topic; throws on a malformed topic.
#[wasm_bindgen(js_name = pubsubTopic)]
pub fn pubsub_topic_js(cluster: u32, content_topic: &str, shards: u32) -> Result<String, JsValue> {
    pubsub_topic(cluster, content_topic, u64::from(shards)).map_err(err)
}

/// Checks a content topic's form; throws `{ code: "INVALID_ARGUMENT" }` otherwise.
#[wasm_bindgen(js_name = validateContentTopic)]
pub fn validate_content_topic(content_topic: &str) -> Result<(), JsValue> {
    ContentTopic::parse(content_topic).map(|_| ()).map_err(err)
}

/// The size of the encoded WakuMessage carrying `payload_len` bytes on a topic.
#[wasm_bindgen(js_name = encodedMessageSize)]
pub fn encoded_message_size_js(content_topic: &str, payload_len: usize) -> usize {
    encoded_message_size(content_topic, payload_len)
}
