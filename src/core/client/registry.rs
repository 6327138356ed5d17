//! A registry directory in place of the delivery topics (`ChatOptions.directory`): the
//! chat-store HTTP API or the app's own object, driven by requests the core emits with
//! their tries and back-off ([`directory::registry`]). What a registry hands back is
//! verified as a record read from the topics, under the id that was asked for.

use openmls_traits::OpenMlsProvider as _;
use prost::Message as _;

use super::Client;
use crate::core::address::AccountId;
use crate::core::directory::registry::{Op, Outcome, Registry, Request, Settled};
use crate::core::directory::{ACCOUNT_TOPIC, KEYPACKAGE_TOPIC};
use crate::core::effects::{Effects, Event};
use crate::core::wire::{AccountSubmissionV1, KeyPackageSubmissionV1};

impl Client {
    /// Publishes to and reads from a registry (`on`) instead of the delivery topics. The
    /// driver sets it on every open, before it announces.
    pub fn set_registry(&mut self, on: bool) {
        if on != self.registry.is_some() {
            self.registry = on.then(Registry::default);
        }
    }

    /// Whether a registry is the directory.
    pub fn uses_registry(&self) -> bool {
        self.registry.is_some()
    }

    /// Queues a put of one of our own records.
    pub(super) fn registry_put(&mut self, fx: &mut Effects, op: Op, key: String, record: (Vec<u8>, Vec<u8>)) {
        let Some(reg) = self.registry.as_mut() else { return };
        match reg.request(op, key, Some(record)) {
            Some(r) => fx.registry.push(r),
            None => fx.events.push(registry_error(
                "too many directory requests in flight: a record waits for the next republish",
            )),
        }
    }

    /// The registry calls a lookup of these accounts starts with: each account's device
    /// list (its key packages follow from [`Client::registry_result`]). Account ids that do
    /// not parse are skipped; nothing is asked without a registry.
    pub fn registry_lookup(&mut self, accounts: &[&str]) -> Vec<Request> {
        let Some(reg) = self.registry.as_mut() else { return Vec::new() };
        let mut out = Vec::new();
        for account in accounts.iter().filter_map(|a| AccountId::parse(a).ok()) {
            self.directory.want(&account);
            if let Some(r) = reg.request(Op::GetAccount, account.to_hex(), None) {
                out.push(r);
            }
        }
        out
    }

    /// The driver ran a registry request: `outcome` is `"stored"`, `"found"` (with the
    /// record), `"notFound"` or `"failed"` (an error or a timeout). The effects carry what
    /// follows (a retry after its back-off, the key packages of a list just read) and an
    /// `error` event when every try failed.
    pub fn registry_result(&mut self, id: u32, outcome: Outcome, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let Some(reg) = self.registry.as_mut() else { return fx };
        match reg.result(id, outcome, now_ms) {
            Settled::Done | Settled::Unknown => {}
            Settled::Retry(r) => fx.registry.push(r),
            Settled::GaveUp { op, key } => {
                let what = match op {
                    Op::PutAccount | Op::PutKeyPackage => "did not take our record",
                    Op::GetAccount | Op::GetKeyPackage => "did not answer a lookup",
                };
                fx.events.push(registry_error(&format!("the directory {what} ({key}) after every try")));
            }
            Settled::Record { op: Op::GetAccount, key, payload, signature } => {
                let Ok(account) = AccountId::parse(&key) else { return fx };
                let submission =
                    AccountSubmissionV1 { account_pub: account.as_bytes().to_vec(), payload, signature };
                // A record that does not verify under the account asked for is the
                // registry's fault and is dropped, as on the shared topics.
                if self
                    .directory
                    .ingest(ACCOUNT_TOPIC, &submission.encode_to_vec(), self.provider.crypto())
                    .is_ok()
                {
                    let devices: Vec<String> = self
                        .directory
                        .bundle(&account)
                        .map(|b| b.devices.iter().map(|d| d.to_hex()).collect())
                        .unwrap_or_default();
                    for d in devices {
                        if let Some(r) =
                            self.registry.as_mut().and_then(|reg| reg.request(Op::GetKeyPackage, d, None))
                        {
                            fx.registry.push(r);
                        }
                    }
                }
            }
            Settled::Record { key, payload, signature, .. } => {
                let Ok(device) = hex::decode(&key) else { return fx };
                let submission = KeyPackageSubmissionV1 { device_id: device, payload, signature };
                let _ = self.directory.ingest(
                    KEYPACKAGE_TOPIC,
                    &submission.encode_to_vec(),
                    self.provider.crypto(),
                );
            }
        }
        fx
    }
}

fn registry_error(message: &str) -> Event {
    // The code the driver gives a transport it cannot reach (the core has no I/O errors).
    Event::Error { code: "TRANSPORT_UNAVAILABLE", message: message.to_owned() }
}
