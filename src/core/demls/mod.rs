//! de-MLS governance (PROTOCOL.md §3): who may commit, how members decide, which of
//! several concurrent commits wins, and how members are scored. Pure functions and plain
//! state over member ids; no MLS and no I/O (`conversation::group` applies them to an MLS
//! group).
//!
//! - `config`: the timers and knobs (§3.7), shipped to joiners with their Welcome.
//! - `vote`: one ballot per proposal and the decision rule (§3.4), with the tally fix of
//!   hashgraph-like-consensus 0.7 and a majority quorum on silent voters (see `vote`).
//! - `steward`: the ordered steward list (§3.5).
//! - `select`: the deterministic order of commit candidates (§3.6).
//! - `score`: local peer scores and their deltas (§3.6).
//! - `state`: open proposals, the approved queue and recovery mode, persisted.

pub mod config;
pub mod score;
pub mod select;
pub mod state;
pub mod steward;
pub mod vote;

pub use config::{group_id_for, Config, Permissions, Role};
pub use score::{ScoreEvent, Scores};
pub use select::CandidateKey;
pub use state::{Governance, GovernanceRecord, MAX_REELECTIONS, PROPOSAL_BURST};
pub use steward::steward_list;
pub use vote::{Ballot, Decision};
