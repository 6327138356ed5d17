//! Multi-client scenarios on a simulated network with a store and a virtual clock.

mod big_group;
mod contacts;
mod content;
mod devices;
mod direct;
mod fuzz;
mod governance;
mod group;
mod group_hostile;
mod identity_records;
pub(super) mod lossy;
mod persist;
mod registry;
pub(super) mod reliability;
mod reliable_channel;
mod signals;
mod sim;
