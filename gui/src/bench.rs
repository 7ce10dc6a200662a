//! `--bench-frames N`: scripted panning and zooming with frame-time
//! statistics, to check that big dumps stay smooth.

use std::time::{Duration, Instant};

use egui::{Rect, vec2};

use crate::views::canvas::Camera;

/// Frame-time recorder and camera script.
pub struct Bench {
    frames: u64,
    seen: u64,
    last: Option<Instant>,
    /// Time between the starts of consecutive frames (whole frame:
    /// UI, tessellation, GL, swap).
    intervals: Vec<Duration>,
    /// Script phase of each interval.
    phases: Vec<u32>,
    /// Zoom of the frame each interval measured, and this frame's.
    zooms: Vec<f32>,
    last_zoom: f32,
    phase: u32,
    /// Time spent in our UI code per frame.
    ui_times: Vec<Duration>,
    /// Script phase of each UI time.
    ui_phases: Vec<u32>,
    /// CPU time the UI thread used per frame (on a busy machine the wall
    /// time above also counts the time other work held the cores).
    cpu_times: Vec<Duration>,
    last_cpu: Option<Duration>,
    /// CPU time of the whole process per frame, all threads: the UI
    /// thread and the software renderer's rasteriser threads. Less
    /// sensitive than wall time to other work on a shared machine.
    process_times: Vec<Duration>,
    last_process: Option<Duration>,
    fitted: Option<Camera>,
    reported: bool,
    /// Live readings seen so far, and whether this frame took a new one.
    readings: u64,
    took_reading: bool,
    /// Count nothing before the first live reading arrived.
    wait_for_reading: bool,
    /// UI code time of the frames that took a new live reading.
    reading_ui_times: Vec<Duration>,
    /// Whether a live reading was being taken in the background during
    /// each interval, and during this frame.
    reading_busy: Vec<bool>,
    busy: bool,
    /// `IPTVIZ_BENCH_ZOOM`: every frame zooms around this zoom instead of
    /// following the script.
    hold_zoom: Option<f32>,
}

impl Bench {
    /// Measures `frames` frames.
    pub fn new(frames: u64) -> Self {
        Bench {
            frames,
            seen: 0,
            last: None,
            intervals: Vec::new(),
            phases: Vec::new(),
            zooms: Vec::new(),
            last_zoom: 1.0,
            phase: 0,
            ui_times: Vec::new(),
            ui_phases: Vec::new(),
            cpu_times: Vec::new(),
            last_cpu: None,
            process_times: Vec::new(),
            last_process: None,
            fitted: None,
            reported: false,
            readings: 0,
            took_reading: false,
            wait_for_reading: false,
            reading_ui_times: Vec::new(),
            reading_busy: Vec::new(),
            busy: false,
            hold_zoom: std::env::var("IPTVIZ_BENCH_ZOOM")
                .ok()
                .and_then(|z| z.parse::<f32>().ok())
                .filter(|z| z.is_finite() && *z > 0.0),
        }
    }

    /// Measures only once a first live reading was shown (a live view of a
    /// big table: the frames before it draw an empty tab).
    pub fn wait_for_reading(&mut self) {
        self.wait_for_reading = true;
    }

    /// Tells the bench how many live readings the app has taken; a change
    /// marks this frame as one that took a new reading.
    pub fn readings(&mut self, n: u64) {
        self.took_reading = n != self.readings;
        self.readings = n;
    }

    /// Tells the bench whether a live reading is being taken in the
    /// background (read, parse, sort, summary) while this frame is drawn.
    pub fn reading_in_progress(&mut self, busy: bool) {
        self.busy = busy;
    }

    /// Records one frame and moves the camera; true when done.
    pub fn frame(
        &mut self,
        start: Instant,
        cam: &mut Camera,
        bounds: Option<Rect>,
        view: Rect,
    ) -> bool {
        let now = Instant::now();
        let cpu = thread_cpu();
        let process = process_cpu();
        if self.wait_for_reading && self.readings == 0 {
            return false;
        }
        // The first frames warm caches (fonts, shaders): not counted.
        if self.seen >= 5 {
            if let (Some(c), Some(l)) = (cpu, self.last_cpu) {
                self.cpu_times.push(c.saturating_sub(l));
            }
            self.ui_times.push(now - start);
            self.ui_phases.push(self.phase);
            if self.took_reading {
                self.reading_ui_times.push(now - start);
            }
            if let Some(l) = self.last {
                self.intervals.push(start - l);
                self.reading_busy.push(self.busy);
                self.phases.push(self.phase);
                self.zooms.push(self.last_zoom);
                // Both readings cover the same span: this frame's start
                // back to the previous one's.
                let p = process.zip(self.last_process);
                self.process_times
                    .push(p.map_or(Duration::ZERO, |(c, l)| c.saturating_sub(l)));
            }
        }
        self.last = Some(start);
        self.last_cpu = cpu;
        self.last_process = process;
        // The camera this frame was drawn with (moved below for the next).
        self.last_zoom = cam.zoom;
        self.seen += 1;
        let Some(bounds) = bounds else {
            return self.seen >= self.frames;
        };
        let base = *self.fitted.get_or_insert_with(|| {
            let mut c = Camera::default();
            c.fit(bounds, view);
            c
        });
        // A third of the time overview panning, a third zoomed to 1:1
        // panning along the top, a third zooming in and out.
        let t = self.seen as f32 / self.frames.max(1) as f32;
        let phase = (t * 3.0).floor() as u32;
        let local = t * 3.0 - phase as f32;
        self.phase = phase.min(2);
        if let Some(z) = self.hold_zoom {
            // One zoom level to profile: zooming in and out by a tenth
            // around it, where the zoom script passes in a few frames.
            self.phase = 2;
            cam.zoom = z * (1.0 + 0.1 * (local * 40.0).sin());
            cam.center = bounds.left_top() + vec2(bounds.width() * 0.3, 400.0);
            return self.seen >= self.frames;
        }
        match phase {
            0 => {
                cam.zoom = base.zoom * 1.5;
                cam.center = base.center
                    + vec2(
                        (local * std::f32::consts::TAU).sin() * bounds.width() * 0.2,
                        0.0,
                    );
            }
            1 => {
                cam.zoom = 1.0;
                cam.center = bounds.left_top()
                    + vec2(
                        local * bounds.width(),
                        300.0 + local * 2000.0f32.min(bounds.height()),
                    );
            }
            _ => {
                let z = (base.zoom.ln()
                    + (0.0f32 - base.zoom.ln())
                        * (0.5 - 0.5 * (local * std::f32::consts::TAU).cos()))
                .exp();
                cam.zoom = z;
                cam.center = bounds.left_top() + vec2(bounds.width() * 0.3, 400.0);
            }
        }
        self.seen >= self.frames
    }

    /// Each measured frame as a CSV row (phase, zoom, whole-frame time,
    /// process CPU time), for finding which frames are slow.
    fn write_frames(&self, path: &std::path::Path) {
        let mut out = String::from("phase,zoom,interval_ms,process_ms\n");
        for (i, d) in self.intervals.iter().enumerate() {
            out += &format!(
                "{},{},{:.3},{:.3}\n",
                self.phases[i],
                self.zooms[i],
                d.as_secs_f64() * 1e3,
                self.process_times[i].as_secs_f64() * 1e3
            );
        }
        if let Err(e) = std::fs::write(path, out) {
            eprintln!("iptviz-gui: cannot write {}: {e}", path.display());
        }
    }

    /// Prints the statistics to stdout (once).
    pub fn report(&mut self, boxes: usize) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        if let Some(path) = std::env::var_os("IPTVIZ_BENCH_CSV") {
            self.write_frames(std::path::Path::new(&path));
        }
        println!(
            "bench: {} frames measured, {boxes} boxes in the scene",
            self.intervals.len()
        );
        println!("  frame interval (whole frame) {}", stats(&self.intervals));
        println!("  ui code per frame            {}", stats(&self.ui_times));
        println!("  UI thread CPU per frame      {}", stats(&self.cpu_times));
        println!(
            "  process CPU per frame        {}",
            stats(&self.process_times)
        );
        if self.readings > 0 {
            println!(
                "  live readings taken: {}; ui code on the frames that took one: {}",
                self.readings,
                stats(&self.reading_ui_times)
            );
            // Frames drawn while the next reading was parsed and sorted
            // beside them, against the frames between readings.
            let split = |busy: bool| -> Vec<Duration> {
                self.intervals
                    .iter()
                    .zip(&self.reading_busy)
                    .filter(|(_, b)| **b == busy)
                    .map(|(d, _)| *d)
                    .collect()
            };
            println!("  frame interval while reading {}", stats(&split(true)));
            println!("  frame interval between       {}", stats(&split(false)));
        }
        let names = ["overview pan", "1:1 pan", "zoom in/out"];
        let of_phase = |v: &[Duration], p: u32| -> Vec<Duration> {
            v.iter()
                .zip(&self.phases)
                .filter(|(_, ph)| **ph == p)
                .map(|(d, _)| *d)
                .collect()
        };
        for (p, name) in names.iter().enumerate() {
            println!(
                "  {name:<28} {}",
                stats(&of_phase(&self.intervals, p as u32))
            );
            println!(
                "  {:<28} {}",
                "  process CPU",
                stats(&of_phase(&self.process_times, p as u32))
            );
            let ui: Vec<Duration> = self
                .ui_times
                .iter()
                .zip(&self.ui_phases)
                .filter(|(_, ph)| **ph == p as u32)
                .map(|(d, _)| *d)
                .collect();
            println!("  {:<28} {}", "  ui code", stats(&ui));
        }
        // Zooming by the zoom drawn: far out (dots), boxes, boxes with text.
        let bands = [
            ("zoom < 5%", 0.0, 0.05),
            ("zoom 5-15%", 0.05, 0.15),
            ("zoom 15-40%", 0.15, 0.4),
            ("zoom 40-100%", 0.4, 1.01),
        ];
        for (name, lo, hi) in bands {
            let pick = |v: &[Duration]| -> Vec<Duration> {
                v.iter()
                    .zip(self.phases.iter().zip(&self.zooms))
                    .filter(|(_, (ph, z))| **ph == 2 && (lo..hi).contains(*z))
                    .map(|(d, _)| *d)
                    .collect()
            };
            println!("    {name:<26} {}", stats(&pick(&self.intervals)));
            println!(
                "    {:<26} {}",
                "  process CPU",
                stats(&pick(&self.process_times))
            );
        }
    }
}

/// CPU time of the calling thread (Linux), from the scheduler's account.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// CPU time of every thread of this process (Linux): a thread's
/// schedstat counts nanoseconds on a CPU.
fn process_cpu() -> Option<Duration> {
    let mut ns = 0u64;
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

fn stats(v: &[Duration]) -> String {
    if v.is_empty() {
        return "no data".into();
    }
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    format!(
        "mean {mean:.2} ms, median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        pick(0.5),
        pick(0.95),
        pick(1.0)
    )
}
