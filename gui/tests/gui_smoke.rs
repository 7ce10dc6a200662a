//! Starts the real binary under Xvfb, loads a sample, draws some frames
//! and checks that it exits cleanly. Without Xvfb the test explains why it
//! did not run, and fails when IPTVIZ_REQUIRE_GUI_TESTS=1.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xvfb_missing(why: &str) {
    let msg = format!("GUI smoke test not run: {why} (install the `xvfb` package)");
    if std::env::var("IPTVIZ_REQUIRE_GUI_TESTS").as_deref() == Ok("1") {
        panic!("{msg}; IPTVIZ_REQUIRE_GUI_TESTS=1 requires it");
    }
    eprintln!("{msg}");
}

/// A display number derived from the process id and the test, so parallel
/// runs on one machine do not collide.
fn start_xvfb(offset: u32) -> Option<(Xvfb, String)> {
    let display = format!(":{}", 200 + (std::process::id() % 400) * 2 + offset);
    let child = Command::new("Xvfb")
        .args([
            display.as_str(),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            xvfb_missing(&format!("cannot start Xvfb: {e}"));
            return None;
        }
    };
    let guard = Xvfb(child);
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", &display[1..]));
    let start = Instant::now();
    while !socket.exists() {
        if start.elapsed() > Duration::from_secs(10) {
            xvfb_missing("Xvfb did not come up within 10 s");
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The socket appears slightly before the server accepts clients.
    std::thread::sleep(Duration::from_millis(300));
    Some((guard, display))
}

fn run_gui(display: &str, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iptviz-gui"))
        .args(args)
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        // Keep the user's remembered settings out of the test.
        .env(
            "XDG_DATA_HOME",
            std::env::temp_dir().join("iptviz-gui-smoke"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("iptviz-gui did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn starts_loads_a_sample_and_exits_cleanly() {
    let Some((_xvfb, display)) = start_xvfb(0) else {
        return;
    };
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/small-host.rules"
    );
    let out = run_gui(&display, &[sample, "--smoke-test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout {stdout}\nstderr {stderr}",
        out.status
    );
    assert!(
        stdout.contains("2 tables, 13 chains, 24 rules, 0 problems"),
        "stdout {stdout}\nstderr {stderr}"
    );
}

#[test]
fn bundled_sample_without_arguments() {
    let Some((_xvfb, display)) = start_xvfb(1) else {
        return;
    };
    let out = run_gui(&display, &["--exit-after-frames", "10"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("bundled sample"), "{stdout}");
}
