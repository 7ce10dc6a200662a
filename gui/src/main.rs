//! `iptviz-gui [FILE]`: explore an iptables ruleset in a window.

use std::process::ExitCode;

use iptviz_gui::settings::{Settings, ThemeChoice};
use iptviz_gui::{IptvizApp, Options};

const USAGE: &str =
    "usage: iptviz-gui [FILE] [--table NAME] [--select CHAIN] [--flow] [--expand-all]
                  [--conntrack CTFILE [--conntrack-live SECS]] [--compare OLD]
                  [--pcap CAPTURE] [--bench-frames N] [--exit-after-frames N] [--smoke-test]

FILE is iptables-save, ip6tables-save or iptables -S output; without it a
sample is shown. --conntrack opens the Conntrack tab with CTFILE (with
--bench-frames the table is scrolled instead of the graph); --conntrack-live
SECS reads CTFILE again every SECS seconds as if it were the live table
(charts over time, NAT pressure: a big live table without root). --compare
OLD opens the Compare view: FILE (the new side) against OLD. --pcap
replays a pcap or pcapng capture through the rules once they are loaded
(the capture panel, and edges as wide as its packets). --bench-frames pans
and zooms N frames and prints frame times (IPTVIZ_BENCH_ZOOM=Z zooms around
Z only; IPTVIZ_BENCH_CSV=FILE writes every frame's zoom and times);
--smoke-test loads, draws 30 frames and exits.";

fn parse_args() -> Result<Options, String> {
    let mut o = Options::default();
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> Result<u64, String> {
        v.and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--bench-frames" => o.bench_frames = Some(number(args.next(), &a)?),
            "--exit-after-frames" => o.exit_after_frames = Some(number(args.next(), &a)?),
            "--smoke-test" => o.exit_after_frames = Some(30),
            "--table" => o.table = Some(args.next().ok_or("--table needs a name")?),
            "--select" => o.select = Some(args.next().ok_or("--select needs a chain")?),
            "--flow" => o.flow = true,
            "--expand-all" => o.expand_all = true,
            "--search" => o.search = Some(args.next().ok_or("--search needs text")?),
            "--theme" => {
                o.theme = Some(match args.next().as_deref() {
                    Some("light") => ThemeChoice::Light,
                    Some("dark") => ThemeChoice::Dark,
                    Some("system") => ThemeChoice::System,
                    _ => return Err("--theme needs light, dark or system".into()),
                })
            }
            "--compare" => o.compare = Some(args.next().ok_or("--compare needs a file")?),
            "--pcap" => o.capture = Some(args.next().ok_or("--pcap needs a capture file")?),
            "--conntrack" => o.conntrack = Some(args.next().ok_or("--conntrack needs a file")?),
            "--conntrack-live" => {
                o.conntrack_live = Some(
                    args.next()
                        .and_then(|s| s.parse::<f64>().ok())
                        .filter(|s| *s > 0.0 && *s < 86_400.0)
                        .ok_or("--conntrack-live needs seconds between readings")?,
                )
            }
            s if s.starts_with('-') && s != "-" => return Err(format!("unknown option {s}")),
            _ if o.file.is_none() => o.file = Some(a),
            _ => return Err("only one FILE".into()),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("iptviz-gui: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    let measuring = opts.bench_frames.is_some();
    let mut native = eframe::NativeOptions {
        // Dithering works against banding in gradients, which the app does
        // not draw; on a software renderer it costs a quarter of each
        // frame's shading (every pixel of every shape runs it).
        dithering: false,
        viewport: egui::ViewportBuilder::default()
            .with_title("iptviz")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([640.0, 400.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    if measuring || opts.exit_after_frames.is_some() {
        // Measurements and smoke tests must not depend on a remembered
        // window size, nor change it.
        native.persist_window = false;
        native.glow_options.vsync = false;
    }
    let result = eframe::run_native(
        "iptviz",
        native,
        Box::new(move |cc| {
            let settings = cc
                .storage
                .and_then(|s| eframe::get_value::<Settings>(s, Settings::KEY))
                .unwrap_or_default();
            Ok(Box::new(IptvizApp::new(settings, opts)))
        }),
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iptviz-gui: {e:#}");
            ExitCode::from(2)
        }
    }
}
