//! The Reliable Channel (LIP-173) for JavaScript: a thin wrapper over
//! `core::reliable::ReliableChannel`; every call returns its effects as a plain object.

use wasm_bindgen::prelude::*;

use super::{bytes, err, ms, to_js};
use crate::core::reliable::{ChannelConfig, ReliableChannel};
use crate::core::CoreError;

/// A number option of a JavaScript options object, if set.
fn num(options: &JsValue, name: &str) -> Result<Option<f64>, JsValue> {
    let v = js_sys::Reflect::get(options, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(err(CoreError::InvalidArgument(format!("{name} must be a non-negative number")))),
    }
}

/// Reads the settings a JavaScript caller may change (camelCase, all optional).
#[allow(
    clippy::cast_possible_truncation,
    reason = "a float-to-int `as` saturates: an app's huge value is the type's maximum"
)]
fn config(options: JsValue) -> Result<ChannelConfig, JsValue> {
    let mut c = ChannelConfig::default();
    if !options.is_object() {
        return Ok(c);
    }
    if let Some(n) = num(&options, "causalHistory")? {
        c.causal_history = n as usize;
    }
    if let Some(n) = num(&options, "ackTimeoutMs")? {
        c.ack_timeout_ms = n as u64;
    }
    if let Some(n) = num(&options, "maxRetransmissions")? {
        c.max_retransmissions = n as u32;
    }
    if let Some(n) = num(&options, "lostAfterMs")? {
        c.lost_after_ms = n as u64;
    }
    if let Some(n) = num(&options, "syncDelayMs")? {
        c.sync_delay_ms = n as u64;
    }
    if let Some(n) = num(&options, "segmentSize")? {
        c.segment_size = n as usize;
    }
    let bloom =
        js_sys::Reflect::get(&options, &JsValue::from_str("bloomInContent")).unwrap_or(JsValue::UNDEFINED);
    if let Some(b) = bloom.as_bool() {
        c.bloom_in_content = b;
    }
    Ok(c)
}

/// One participant's end of a reliable channel.
#[wasm_bindgen]
pub struct WasmReliableChannel {
    inner: ReliableChannel,
}

#[wasm_bindgen]
impl WasmReliableChannel {
    /// Opens a channel end from its records (`[key, value]` pairs of its key range,
    /// possibly none); throws `{ code }` on bad options or corrupt records.
    #[wasm_bindgen]
    pub fn open(
        channel_id: &str,
        sender_id: &str,
        options: JsValue,
        records: js_sys::Array,
        now: f64,
    ) -> Result<WasmReliableChannel, JsValue> {
        let config = config(options)?;
        let loaded: Vec<(Vec<u8>, Vec<u8>)> = records
            .iter()
            .map(|r| {
                let r = js_sys::Array::from(&r);
                (bytes(&r.get(0)), bytes(&r.get(1)))
            })
            .collect();
        let inner = ReliableChannel::restore(channel_id, sender_id, config, loaded, ms(now)).map_err(err)?;
        Ok(WasmReliableChannel { inner })
    }

    /// The key range `[from, to]` of a channel end's records.
    #[wasm_bindgen(js_name = keyRange)]
    pub fn key_range(channel_id: &str, sender_id: &str) -> js_sys::Array {
        let (from, to) = ReliableChannel::key_range(channel_id, sender_id);
        let a = js_sys::Array::new();
        a.push(&js_sys::Uint8Array::from(from.as_slice()));
        a.push(&js_sys::Uint8Array::from(to.as_slice()));
        a
    }

    /// Sends a payload: `{ requestId, effects }`.
    #[wasm_bindgen]
    pub fn send(&mut self, payload: &[u8], now: f64) -> Result<JsValue, JsValue> {
        let (request_id, effects) = self.inner.send(payload, ms(now)).map_err(err)?;
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Sent {
            request_id: String,
            effects: crate::core::reliable::ChannelEffects,
        }
        Ok(to_js(&Sent { request_id, effects }))
    }

    /// The network hash of one of our messages, once published.
    #[wasm_bindgen]
    pub fn published(&mut self, message_id: &str, message_hash: &str) -> JsValue {
        to_js(&self.inner.published(message_id, message_hash))
    }

    /// One message from the topic, with its network hash.
    #[wasm_bindgen]
    pub fn receive(&mut self, payload: &[u8], message_hash: &str, now: f64) -> JsValue {
        to_js(&self.inner.receive(payload, message_hash, ms(now)))
    }

    /// Runs what is due.
    #[wasm_bindgen]
    pub fn tick(&mut self, now: f64) -> JsValue {
        to_js(&self.inner.tick(ms(now)))
    }

    /// Ids named by others and not received.
    #[wasm_bindgen(js_name = missingIds)]
    pub fn missing_ids(&self) -> Vec<String> {
        self.inner.missing_ids()
    }
}
