//! What iptables knows about each match module and target, written down once
//! as data that the readers, labels and checks use.

pub mod listing;
