//! `iptables -L` text in the desktop app (issue 10): pasted anywhere or
//! dropped as a file, it is read like the command line reads it, its
//! chains are shown, and what the listing could not carry is said.

mod common;
use common::app_harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz::model::InputFormat;
use iptviz_gui::{IptvizApp, Options, settings::Settings};

/// `iptables -L -v -n` of the filter table, then of the nat table, as
/// pasted into a question (prompts and all).
const LISTING_V: &str = "\
$ sudo iptables -L -v -n
Chain INPUT (policy DROP 12 packets, 720 bytes)
 pkts bytes target     prot opt in     out     source               destination
  10K  600K ACCEPT     all  --  lo     *       0.0.0.0/0            0.0.0.0/0
  120  9360 ssh-in     tcp  --  eth0   *       0.0.0.0/0            0.0.0.0/0            tcp dpt:22

Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination

Chain ssh-in (1 references)
 pkts bytes target     prot opt in     out     source               destination
   80  4800 ACCEPT     all  --  *      *       10.0.0.0/8           0.0.0.0/0            /* office */
   40  4560 DROP       all  --  *      *       0.0.0.0/0            0.0.0.0/0
$ sudo iptables -t nat -L -v -n
Chain PREROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    3   180 DNAT       tcp  --  eth0   *       0.0.0.0/0            0.0.0.0/0            tcp dpt:8080 to:10.0.0.5:80

Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination

Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
";

/// `iptables -L` with neither -v nor -n: no interfaces, no counts, names.
const LISTING_PLAIN: &str = "\
Chain INPUT (policy ACCEPT)
target     prot opt source               destination
ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:ssh
web        all  --  anywhere             anywhere

Chain FORWARD (policy DROP)
target     prot opt source               destination

Chain OUTPUT (policy ACCEPT)
target     prot opt source               destination

Chain web (1 references)
target     prot opt source               destination
ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:80
";

fn harness() -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            sync: true,
            ..Default::default()
        },
    );
    app_harness(app, 1280.0, 800.0)
}

/// `table/chain` of every chain of the loaded document.
fn chains(h: &Harness<'_, IptvizApp>) -> Vec<String> {
    let doc = h.state().state.doc.as_ref().expect("a document is loaded");
    doc.parsed
        .ruleset
        .tables
        .iter()
        .flat_map(|t| {
            t.chains
                .iter()
                .map(move |c| format!("{}/{}", t.name, c.name))
        })
        .collect()
}

#[test]
fn a_pasted_listing_shows_its_tables_chains_and_counts() {
    let mut h = harness();
    h.run();
    h.event(egui::Event::Paste(LISTING_V.into()));
    h.run();
    {
        let doc = h.state().state.doc.as_ref().expect("pasted text loaded");
        assert_eq!(doc.name, "pasted text");
        assert_eq!(doc.parsed.ruleset.format, InputFormat::Listing);
        assert_eq!(doc.parsed.error_count(), 0, "{:?}", doc.parsed.problems);
        assert_eq!(doc.parsed.ruleset.rule_count(), 5);
        let ssh = doc.parsed.ruleset.tables[0]
            .chain("INPUT")
            .expect("INPUT")
            .rules[1]
            .counters
            .expect("counts from the pkts and bytes columns");
        assert_eq!((ssh.packets, ssh.bytes), (120, 9360));
    }
    let all = chains(&h);
    for want in [
        "filter/INPUT",
        "filter/ssh-in",
        "nat/PREROUTING",
        "nat/POSTROUTING",
    ] {
        assert!(all.iter().any(|c| c == want), "{want} in {all:?}");
    }
    // The status line names the format; the user chain is drawn and can
    // be found by the search like any other.
    h.get_by_label_contains("(iptables -L text)");
    h.get_by_label("Search").click();
    h.run();
    h.get_by_label("Search").type_text("ssh-in");
    h.run();
    h.get_by_label("filter ssh-in").click();
    h.run();
    h.get_by_label("filter / ssh-in");
    // The comment of the first rule came through the table's -L form.
    h.get_by_label("office");
}

#[test]
fn a_pasted_listing_without_v_says_what_it_lost() {
    let mut h = harness();
    h.run();
    h.event(egui::Event::Paste(LISTING_PLAIN.into()));
    h.run();
    let notes = {
        let doc = h.state().state.doc.as_ref().expect("pasted text loaded");
        assert_eq!(doc.parsed.ruleset.format, InputFormat::Listing);
        assert_eq!(doc.parsed.ruleset.rule_count(), 3);
        doc.parsed.ruleset.notes.clone()
    };
    assert!(
        notes.iter().any(|n| n.contains("no interfaces")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("ssh")), "{notes:?}");
    // The status bar says how many notes there are; hovering shows them.
    let label = format!("{} notes on what the text does not show", notes.len());
    h.get_by_label(&label).hover();
    // Tooltips wait half a second of hovering; frames are 50 ms apart.
    h.run_steps(20);
    h.get_by_label_contains("note: iptables -L without -v prints no interfaces");
    h.get_by_label_contains("printed as names instead of numbers");
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_dropped_listing_file_is_read_as_a_listing() {
    let dir = std::env::temp_dir().join(format!("iptviz-gui-listing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("firewall-L.txt");
    std::fs::write(&file, LISTING_PLAIN).expect("write listing");
    let mut h = harness();
    h.run();
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(file.clone())));
    h.run();
    let doc = h.state().state.doc.as_ref().expect("dropped file loaded");
    assert_eq!(doc.name, file.display().to_string());
    assert_eq!(doc.parsed.ruleset.format, InputFormat::Listing);
    assert_eq!(doc.parsed.ruleset.rule_count(), 3);
    assert!(!doc.parsed.ruleset.notes.is_empty());
    let all = chains(&h);
    assert!(all.iter().any(|c| c == "filter/web"), "{all:?}");
    h.get_by_label_contains("notes on what the text does not show");
    let _ = std::fs::remove_dir_all(&dir);
}
