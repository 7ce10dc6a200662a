//! What the desktop app's test files share.

use egui_kittest::Harness;
use iptviz_gui::IptvizApp;

/// The app in a window of `width` by `height` points, a twentieth of a
/// second a frame, not yet run.
pub fn app_harness(app: IptvizApp, width: f32, height: f32) -> Harness<'static, IptvizApp> {
    Harness::builder()
        .with_size(egui::vec2(width, height))
        .with_step_dt(0.05)
        .build_ui_state(|ui, app: &mut IptvizApp| app.show(ui), app)
}
