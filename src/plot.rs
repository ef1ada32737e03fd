//! PNG line charts for the evaluation reports (plotters, bitmap backend, the bundled DejaVu font
//! so no system font is needed).

use anyhow::Result;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

/// Registers the bundled font once.
pub fn font() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Axes of a chart: caption, axis descriptions and ranges, picture size in pixels.
pub struct Axes<'a> {
    pub caption: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub size: (u32, u32),
}

/// Draws named curves of (x, y) points as lines with a legend into the PNG at `path`.
pub fn lines(path: &Path, axes: &Axes, curves: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    font();
    let root = BitMapBackend::new(path, axes.size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(axes.x.clone(), axes.y.clone())?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .draw()?;
    for (i, (name, pts)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
