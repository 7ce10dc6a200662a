//! iptviz desktop app (placeholder until the GUI issue lands).
fn main() {
    eprintln!("iptviz-gui: not built yet");
}
