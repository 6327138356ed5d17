//! A registry directory for JavaScript (`ChatOptions.directory = { url }` or the app's
//! object): the core emits `effects.registry` requests; the driver runs each and reports
//! it here.

use wasm_bindgen::prelude::*;

use super::{ms, to_js, WasmClient};
use crate::core::directory::registry::Outcome;

#[wasm_bindgen]
impl WasmClient {
    /// Publishes to and reads from a registry instead of the delivery topics.
    #[wasm_bindgen(js_name = setRegistry)]
    pub fn set_registry(&mut self, on: bool) {
        self.inner.set_registry(on);
    }

    /// The registry requests a lookup of these accounts starts with.
    #[wasm_bindgen(js_name = registryLookup)]
    pub fn registry_lookup(&mut self, accounts: Vec<String>) -> JsValue {
        let refs: Vec<&str> = accounts.iter().map(String::as_str).collect();
        to_js(&self.inner.registry_lookup(&refs))
    }

    /// A registry request ran: `outcome` is `"stored"`, `"found"` (with `payload` and
    /// `signature`), `"notFound"` or `"failed"`. Returns the effects (what follows in
    /// `effects.registry`).
    #[wasm_bindgen(js_name = registryResult)]
    pub fn registry_result(
        &mut self,
        id: u32,
        outcome: &str,
        payload: Option<Vec<u8>>,
        signature: Option<Vec<u8>>,
        now: f64,
    ) -> JsValue {
        let outcome = match (outcome, payload, signature) {
            ("stored", ..) => Outcome::Stored,
            ("found", Some(payload), Some(signature)) => Outcome::Found { payload, signature },
            ("notFound", ..) => Outcome::NotFound,
            _ => Outcome::Failed,
        };
        to_js(&self.inner.registry_result(id, outcome, ms(now)))
    }
}
