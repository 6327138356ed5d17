//! A registry directory: the chat-store HTTP API (`ChatOptions.directory = { url }`) or an
//! object the app brings, both driven by the same requests (PROTOCOL.md §2.3).
//!
//! The core decides what to ask, how long a try may take and when to try again (libchat's
//! client policy: a 10 s timeout, 4 retries, back-off from 200 ms doubling up to 2 s);
//! the driver runs each [`Request`] against the registry and reports what came back with
//! [`Registry::result`]. Records read back are libchat's submissions and are verified by
//! the [`super::Directory`] exactly as records read from the delivery topics, under the
//! id that was asked for, so that a registry can withhold records but never substitute
//! them. This module does no I/O.

use std::collections::BTreeMap;

use serde::Serialize;

/// How long one try may take (ms).
pub const TIMEOUT_MS: u64 = 10_000;
/// How many times a failed request is tried again.
pub const RETRIES: u32 = 4;
/// The first back-off (ms); it doubles with every try.
pub const BACKOFF_START_MS: u64 = 200;
/// The longest back-off (ms).
pub const BACKOFF_CAP_MS: u64 = 2_000;
/// The most requests in flight (a lookup of many accounts waits for room).
pub const MAX_PENDING: usize = 1024;
/// The largest record a registry may hand back (bytes): larger is refused unread.
pub const MAX_RECORD: usize = 16 * 1024;

/// What a request does (the four calls of the chat-store API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// `POST /v0/account`: an account's signed device bundle.
    PutAccount,
    /// `POST /v0/keypackage`: an installation's signed key package.
    PutKeyPackage,
    /// `GET /v0/account/{account_pub}`.
    GetAccount,
    /// `GET /v0/keypackage/{device_id}`.
    GetKeyPackage,
}

/// One call for the driver to run against the registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Report the outcome under this id.
    pub id: u32,
    /// The call.
    pub op: Op,
    /// The account (`account_pub`) or installation (`device_id`), lower-case hex.
    pub key: String,
    /// The signed payload (puts only).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub payload: Option<Vec<u8>>,
    /// Its signature (puts only).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub signature: Option<Vec<u8>>,
    /// Which try this is (0 first).
    pub attempt: u32,
    /// Give up on this try after this long (ms).
    pub timeout_ms: f64,
    /// Do not start before this time (ms since the epoch; 0: at once).
    pub not_before_ms: f64,
}

mod opt_bytes {
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }
}

/// What a try came to, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A put was taken (a replay the registry already holds counts).
    Stored,
    /// A get found a record.
    Found {
        /// The signed payload.
        payload: Vec<u8>,
        /// Its signature.
        signature: Vec<u8>,
    },
    /// A get found nothing (no retry: the registry answered).
    NotFound,
    /// The call failed or timed out (retried by the policy).
    Failed,
}

/// What [`Registry::result`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Nothing more to do for it.
    Done,
    /// A get brought a record: verify it (`op`, `key`), then ask what follows.
    Record {
        /// The get that brought it.
        op: Op,
        /// The id it was asked for.
        key: String,
        /// The signed payload.
        payload: Vec<u8>,
        /// Its signature.
        signature: Vec<u8>,
    },
    /// Tried again (the request goes back to the driver).
    Retry(Request),
    /// Every try failed.
    GaveUp {
        /// The call.
        op: Op,
        /// Its id.
        key: String,
    },
    /// No such request (already settled, or never asked): ignored.
    Unknown,
}

/// The requests in flight.
#[derive(Debug, Default)]
pub struct Registry {
    next_id: u32,
    pending: BTreeMap<u32, Request>,
}

/// The wait before try `attempt` (1 for the first retry).
pub fn backoff_ms(attempt: u32) -> u64 {
    let exp = attempt.saturating_sub(1).min(16);
    BACKOFF_START_MS.saturating_mul(1 << exp).min(BACKOFF_CAP_MS)
}

impl Registry {
    /// A new request, tried at once; `None` when too many are in flight, or when the same
    /// get is in flight already.
    pub fn request(&mut self, op: Op, key: String, record: Option<(Vec<u8>, Vec<u8>)>) -> Option<Request> {
        if self.pending.len() >= MAX_PENDING {
            return None;
        }
        let same = self.pending.iter().find(|(_, r)| r.op == op && r.key == key).map(|(id, _)| *id);
        if let Some(id) = same {
            match op {
                // A get already in flight is not asked twice (its answer serves both).
                Op::GetAccount | Op::GetKeyPackage => return None,
                // A newer put replaces an older one still being tried, so an old list
                // cannot land after the new one.
                Op::PutAccount | Op::PutKeyPackage => {
                    self.pending.remove(&id);
                }
            }
        }
        self.next_id = self.next_id.wrapping_add(1);
        let (payload, signature) = record.unzip();
        let r = Request {
            id: self.next_id,
            op,
            key,
            payload,
            signature,
            attempt: 0,
            timeout_ms: TIMEOUT_MS as f64,
            not_before_ms: 0.0,
        };
        self.pending.insert(r.id, r.clone());
        Some(r)
    }

    /// Settles one try: a failure is tried again after the back-off until the retries
    /// are spent; a record too large is refused as if the call failed for good.
    pub fn result(&mut self, id: u32, outcome: Outcome, now_ms: u64) -> Settled {
        let Some(mut r) = self.pending.remove(&id) else { return Settled::Unknown };
        match outcome {
            Outcome::Stored | Outcome::NotFound => Settled::Done,
            Outcome::Found { payload, signature }
                if payload.len().saturating_add(signature.len()) <= MAX_RECORD
                    && matches!(r.op, Op::GetAccount | Op::GetKeyPackage) =>
            {
                Settled::Record { op: r.op, key: r.key, payload, signature }
            }
            Outcome::Found { .. } => Settled::GaveUp { op: r.op, key: r.key },
            Outcome::Failed if r.attempt < RETRIES => {
                r.attempt = r.attempt.saturating_add(1);
                r.not_before_ms = now_ms.saturating_add(backoff_ms(r.attempt)) as f64;
                self.pending.insert(r.id, r.clone());
                Settled::Retry(r)
            }
            Outcome::Failed => Settled::GaveUp { op: r.op, key: r.key },
        }
    }

    /// How many requests are in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_200_ms_up_to_2_s() {
        let waits: Vec<u64> = (1..=6).map(backoff_ms).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn a_failing_call_is_tried_five_times_then_given_up() {
        let mut reg = Registry::default();
        let r = reg.request(Op::GetAccount, "ab".into(), None).unwrap();
        assert_eq!((r.attempt, r.timeout_ms, r.not_before_ms), (0, 10_000.0, 0.0));
        let mut id = r.id;
        let mut now = 1_000;
        for attempt in 1..=RETRIES {
            let Settled::Retry(next) = reg.result(id, Outcome::Failed, now) else { panic!("retried") };
            assert_eq!(next.attempt, attempt);
            assert_eq!(next.not_before_ms as u64, now + backoff_ms(attempt));
            id = next.id;
            now += 5_000;
        }
        assert_eq!(
            reg.result(id, Outcome::Failed, now),
            Settled::GaveUp { op: Op::GetAccount, key: "ab".into() }
        );
        assert_eq!(reg.in_flight(), 0);
        assert_eq!(reg.result(id, Outcome::Failed, now), Settled::Unknown, "settled once");
    }

    #[test]
    fn answers_settle_and_oversized_records_are_refused() {
        let mut reg = Registry::default();
        let put = reg.request(Op::PutAccount, "ab".into(), Some((vec![1], vec![2]))).unwrap();
        assert_eq!(put.payload.as_deref(), Some(&[1u8][..]));
        assert_eq!(reg.result(put.id, Outcome::Stored, 0), Settled::Done);
        let get = reg.request(Op::GetKeyPackage, "cd".into(), None).unwrap();
        assert_eq!(reg.request(Op::GetKeyPackage, "cd".into(), None), None, "asked once");
        // A newer put replaces the older one: the older one's answer is ignored.
        let old = reg.request(Op::PutAccount, "ab".into(), Some((vec![1], vec![2]))).unwrap();
        let new = reg.request(Op::PutAccount, "ab".into(), Some((vec![3], vec![4]))).unwrap();
        assert_eq!(reg.result(old.id, Outcome::Failed, 0), Settled::Unknown, "no retry of the old list");
        assert_eq!(reg.result(new.id, Outcome::Stored, 0), Settled::Done);
        let big = Outcome::Found { payload: vec![0; MAX_RECORD], signature: vec![0; 64] };
        assert!(matches!(reg.result(get.id, big, 0), Settled::GaveUp { .. }));
        let get = reg.request(Op::GetKeyPackage, "cd".into(), None).unwrap();
        assert_eq!(reg.result(get.id, Outcome::NotFound, 0), Settled::Done);
        // A put answered with a record is not a record.
        let put = reg.request(Op::PutKeyPackage, "cd".into(), Some((vec![1], vec![2]))).unwrap();
        let found = Outcome::Found { payload: vec![1], signature: vec![2] };
        assert!(matches!(reg.result(put.id, found, 0), Settled::GaveUp { .. }));
    }

    #[test]
    fn requests_in_flight_are_bounded() {
        let mut reg = Registry::default();
        for i in 0..MAX_PENDING {
            assert!(reg.request(Op::GetAccount, format!("{i}"), None).is_some());
        }
        assert!(reg.request(Op::GetAccount, "more".into(), None).is_none());
    }
}
