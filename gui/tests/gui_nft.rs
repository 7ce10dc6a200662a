//! nft rulesets in the desktop app (issue 16): a corpus nft file opened
//! from the path field shows its chains, base chains named with their
//! hook and priority.

mod common;
use common::app_harness;

use std::path::PathBuf;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz::model::InputFormat;
use iptviz_gui::scene::NodeKind;
use iptviz_gui::{IptvizApp, Options, settings::Settings};

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

fn corpus(file: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/nftables")
        .join(file);
    assert!(p.is_file(), "corpus file missing: {}", p.display());
    p
}

#[test]
fn a_pasted_nft_ruleset_shows_its_base_chains() {
    let mut h = harness();
    h.run();
    let text = std::fs::read_to_string(corpus("fw4-ipsets.listed.nft")).unwrap();
    h.event(egui::Event::Paste(text));
    h.run();
    {
        let doc = h.state().state.doc.as_ref().expect("pasted text loaded");
        assert_eq!(doc.parsed.ruleset.format, InputFormat::Nft);
        assert_eq!(doc.parsed.error_count(), 0, "{:?}", doc.parsed.problems);
        let t = doc
            .parsed
            .ruleset
            .table("inet fw4")
            .expect("the fw4 table is drawn");
        assert!(t.chain("input [hook input priority filter]").is_some());
        assert!(t.chain("handle_reject").is_some());
    }
    h.get_by_label_contains("(nft text)");
    h.get_by_label("Search").click();
    h.run();
    h.get_by_label("Search").type_text("handle_reject");
    h.run();
    h.get_by_label("inet fw4 handle_reject").click();
    h.run();
    h.get_by_label("inet fw4 / handle_reject");
}

#[test]
fn nft_json_opens_too() {
    let mut h = harness();
    h.run();
    let text = std::fs::read_to_string(corpus("kube-proxy-nftables-ipv6.json")).unwrap();
    h.event(egui::Event::Paste(text));
    h.run();
    let doc = h.state().state.doc.as_ref().expect("pasted JSON loaded");
    assert_eq!(doc.parsed.ruleset.format, InputFormat::NftJson);
    assert_eq!(doc.parsed.error_count(), 0, "{:?}", doc.parsed.problems);
    let t = doc
        .parsed
        .ruleset
        .table("ip6 kube-proxy")
        .expect("drawn table");
    assert!(
        t.chain("nat-prerouting [hook prerouting priority -100]")
            .is_some()
    );
}

fn type_into(h: &mut Harness<'static, IptvizApp>, label: &str, text: &str) {
    h.get_by_label(label).click();
    h.run();
    h.get_by_label(label).type_text(text);
    h.run();
}

/// The Trace view ran the iptables tracer on the drawings of nft tables
/// and found no chain to walk; it walks them with the nft tracer, and the
/// path is drawn on the nft table and alone.
#[test]
fn the_trace_view_walks_an_nft_ruleset() {
    let mut h = harness();
    h.run();
    let text = std::fs::read_to_string(corpus("nixos-nnf-zones-nat.listed.nft")).unwrap();
    h.event(egui::Event::Paste(text));
    h.run();
    h.get_by_label("Trace").click();
    h.run();
    type_into(&mut h, "Source", "10.0.0.1");
    type_into(&mut h, "Destination", "10.0.0.2");
    type_into(&mut h, "Destination port", "22");
    type_into(&mut h, "Local addresses", "10.0.0.2");
    h.get_by_label("Run trace").click();
    h.run();
    h.get_by_label("Verdict: ACCEPT");
    {
        let app = h.state();
        let r = app
            .state
            .trace
            .current(app.state.doc.as_ref())
            .expect("traced");
        let taken: Vec<(&str, Option<usize>)> = r
            .view
            .steps
            .iter()
            .filter(|s| s.matched)
            .map(|s| (s.chain.as_str(), s.rule))
            .collect();
        assert_eq!(
            taken,
            [
                ("prerouting", None),
                ("input", Some(4)),
                ("traverse-from-all-zone-to-fw-zone-rule", Some(1))
            ]
        );
        // Shown on the nft table, its chains on the path.
        let scene = app.state.scene.clone().expect("scene");
        let path = iptviz_gui::trace_state::scene_path(&app.state, &scene).expect("path");
        let name = |i: u32| scene.nodes[i as usize].title.as_str();
        let chains: Vec<&str> = path
            .nodes
            .iter()
            .filter(|&&i| matches!(scene.nodes[i].kind, NodeKind::Chain(_)))
            .map(|&i| name(i as u32))
            .collect();
        assert_eq!(chains.len(), 3, "prerouting, input and the zone chain");
        // The canvas lights what the SVG lights: the prerouting policy
        // that let the packet on, and the accepting rule's verdict too.
        let lit: Vec<(&str, &str)> = path
            .edges
            .iter()
            .map(|&e| (name(scene.edges[e].from), name(scene.edges[e].to)))
            .collect();
        assert!(
            lit.iter()
                .any(|&(f, t)| f.starts_with("prerouting") && t == "ACCEPT"),
            "the prerouting policy is lit: {lit:?}"
        );
        assert!(
            lit.iter()
                .any(|&(f, t)| f == "traverse-from-all-zone-to-fw-zone-rule" && t == "ACCEPT"),
            "the accepting rule is lit: {lit:?}"
        );
    }
    h.get_by_label("Path only").click();
    h.run();
    let app = h.state();
    let s = app
        .state
        .trace
        .path_scene(app.state.doc.as_ref())
        .expect("the walk drawn alone");
    let frames: Vec<&str> = s.clusters.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        frames,
        [
            "PREROUTING · table inet firewall",
            "INPUT · table inet firewall"
        ]
    );
    assert!(
        s.edges.iter().any(|e| e.label == "#1 tcp dport 22 accept"),
        "the nft rule taken is named on its edge"
    );
}

/// The Reach view computed matrices of the drawings of nft tables (an
/// answer about the picture, not the rules); it says plainly that it
/// covers iptables tables only.
#[test]
fn reach_says_it_covers_iptables_tables_only() {
    let mut h = harness();
    h.run();
    let text = std::fs::read_to_string(corpus("fw4-ipsets.listed.nft")).unwrap();
    h.event(egui::Event::Paste(text));
    h.run();
    h.get_by_label("Reach").click();
    h.run();
    // The default table (filter) is not there: no iptables table at all.
    h.get_by_label("Compute").click();
    h.run();
    h.get_by_label_contains("reach analysis covers iptables tables only");
    assert!(h.state().state.reach.result.is_none());
    // The nft table picked by name: the same answer, no matrix.
    h.state_mut().reach_form.table = "inet fw4".into();
    h.state_mut().reach_form.chain = "input [hook input priority filter]".into();
    h.run();
    h.get_by_label("Compute").click();
    h.run();
    h.get_by_label_contains("`inet fw4` is an nft table");
    assert!(h.state().state.reach.result.is_none());
}

/// Hovering a drawn nft chain showed its rules in the drawing's iptables
/// words (`-A input -m comment --comment "iifname 'lo' accept" -j
/// ACCEPT`) and said nothing of its type, hook, priority or family; the
/// tooltip shows the chain's declaration and its rules as nft writes them.
#[test]
fn hovering_an_nft_chain_shows_its_nft_declaration_and_rules() {
    let mut h = harness();
    h.run();
    let text = "table inet t {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname \"lo\" accept
\t\tip saddr 10.0.0.0/8 tcp dport 22 jump ssh
\t}
\tchain ssh {
\t\tct state new counter accept
\t}
}
";
    h.event(egui::Event::Paste(text.into()));
    h.run();
    let at = {
        let app = h.state();
        let scene = app.state.scene.clone().expect("scene");
        let t = &app
            .state
            .doc
            .as_ref()
            .expect("loaded")
            .parsed
            .ruleset
            .tables[app.state.table];
        assert_eq!(t.name, "inet t");
        let n = scene
            .node_for_chain(
                t.chain_position("input [hook input priority filter]")
                    .unwrap(),
            )
            .expect("the base chain is drawn");
        assert_eq!(
            scene.nodes[n].hover,
            "base chain input in table inet t (line 2): \
             type filter hook input priority filter; policy drop; 2 rules"
        );
        let hovers: Vec<&str> = scene.edges.iter().map(|e| e.hover.as_str()).collect();
        assert!(
            hovers.contains(&"line 5: ip saddr 10.0.0.0/8 tcp dport 22 jump ssh"),
            "{hovers:?}"
        );
        let view = app.last_canvas_rect.expect("canvas drawn");
        app.camera.to_screen(view, scene.nodes[n].rect.center())
    };
    assert!(
        h.query_by_label("iifname \"lo\" accept").is_none(),
        "no tooltip before hovering"
    );
    h.event(egui::Event::PointerMoved(at));
    // Tooltips wait half a second of hovering; frames are 50 ms apart.
    h.run_steps(20);
    h.get_by_label_contains("type filter hook input priority filter; policy drop;");
    h.get_by_label("iifname \"lo\" accept");
    h.get_by_label("ip saddr 10.0.0.0/8 tcp dport 22 jump ssh");
    assert!(
        h.query_by_label_contains("--comment").is_none(),
        "iptables words in the tooltip"
    );
}
