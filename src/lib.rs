//! iptviz: read `iptables-save` output into a faithful model, and show how
//! packets move through it.
//!
//! ```
//! let text = "*filter\n:INPUT DROP [0:0]\n:SSH - [0:0]\n\
//!             -A INPUT -p tcp -m tcp --dport 22 -j SSH\n-A SSH -j ACCEPT\nCOMMIT\n";
//! let parsed = iptviz::parse::parse_str(text, &iptviz::parse::ParseOptions::strict("example")).unwrap();
//! let filter = parsed.ruleset.table("filter").unwrap();
//! assert_eq!(filter.chain("INPUT").unwrap().rules.len(), 1);
//! assert!(parsed.problems.is_empty());
//! // A rule is read through views of the words it keeps.
//! let rule = &filter.chain("INPUT").unwrap().rules[0];
//! assert_eq!(rule.protocol().unwrap().value, "tcp");
//! let tcp = rule.matches().next().unwrap();
//! assert_eq!(tcp.opt("--dport").unwrap().arg(), "22");
//! assert_eq!(rule.target().unwrap().name, "SSH");
//! ```

pub mod analysis;
pub mod conntrack;
pub mod diagram;
pub mod diff;
pub mod fleet;
pub mod flow;
pub mod graph;
pub mod input;
pub mod layout;
pub mod matches;
pub mod model;
pub mod nft;
pub mod parse;
pub mod render;
pub mod save;
pub mod trace;
pub mod typed;

pub use model::{Chain, Match, Rule, Ruleset, Table, Target};
pub use parse::{ParseError, ParseOptions, Parsed, Problem, Severity, parse_bytes, parse_str};
