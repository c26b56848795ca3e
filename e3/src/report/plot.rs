//! The two bar charts of the report, drawn with plotters into SVG strings.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Series colours (the "tab10" palette), picked by a candidate's index; they repeat after ten.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Labels longer than this many characters are cut, so one long name cannot squash a chart.
const MAX_LABEL_CHARS: usize = 60;

/// The colour of the candidate with index `index`.
pub(super) fn color(index: usize) -> RGBColor {
    let (red, green, blue) = PALETTE[index % PALETTE.len()];
    RGBColor(red, green, blue)
}

/// A sans-serif text style of `size` pixels, anchored at `horizontal`/`vertical`.
pub(super) fn text_style(size: u32, horizontal: HPos, vertical: VPos) -> TextStyle<'static> {
    ("sans-serif", size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(horizontal, vertical))
}

/// `label`, cut to [`MAX_LABEL_CHARS`] characters with an ellipsis.
pub(super) fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_owned()
    } else {
        let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// One bar: its height and the text printed on top of it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bar {
    pub value: f64,
    pub label: String,
}

/// One series of a grouped bar chart: a bar (or none) per group.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Series {
    pub name: String,
    /// Index into the palette.
    pub color: usize,
    pub values: Vec<Option<Bar>>,
}

/// Vertical bars, one group per x label, one bar per series in each group.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GroupedBars {
    pub title: String,
    pub y_desc: String,
    pub groups: Vec<String>,
    pub series: Vec<Series>,
}

/// Draws `chart` as an SVG document.
pub(super) fn grouped_bars(chart: &GroupedBars) -> anyhow::Result<String> {
    let groups = chart.groups.len().max(1);
    let slots = chart.series.len().max(1);
    let width = (160 + 60 * groups * slots).clamp(520, 1600) as u32;
    let highest = chart
        .series
        .iter()
        .flat_map(|series| series.values.iter().flatten())
        .map(|bar| bar.value)
        .fold(0.0, f64::max);
    // Head room for the value labels and the legend.
    let top = if highest > 0.0 { highest * 1.35 } else { 1.0 };
    let slot = 0.8 / slots as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 440)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut plot = ChartBuilder::on(&root)
            .caption(shorten(&chart.title), ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..groups as f64, 0.0..top)?;
        plot.configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(chart.y_desc.as_str())
            .draw()?;
        for (index, series) in chart.series.iter().enumerate() {
            let color = color(series.color);
            let bars: Vec<(f64, &Bar)> = series
                .values
                .iter()
                .enumerate()
                .filter_map(|(group, bar)| {
                    let left = group as f64 + 0.1 + slot * index as f64;
                    bar.as_ref().map(|bar| (left, bar))
                })
                .collect();
            plot.draw_series(bars.iter().map(|(left, bar)| {
                Rectangle::new(
                    [(*left, 0.0), (left + slot * 0.9, bar.value)],
                    color.filled(),
                )
            }))?
            .label(shorten(&series.name))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
            plot.draw_series(bars.iter().map(|(left, bar)| {
                let style = text_style(12, HPos::Center, VPos::Bottom);
                Text::new(bar.label.clone(), (left + slot * 0.45, bar.value), style)
            }))?;
        }
        for (group, name) in chart.groups.iter().enumerate() {
            let (x, y) = plot.backend_coord(&(group as f64 + 0.5, 0.0));
            let style = text_style(14, HPos::Center, VPos::Top);
            root.draw(&Text::new(shorten(name), (x, y + 10), style))?;
        }
        plot.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// One horizontal bar: the label left of the axis, its length, the text at its end, its colour.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HorizontalBar {
    pub label: String,
    pub value: f64,
    pub value_label: String,
    pub color: usize,
}

/// Horizontal bars, top to bottom in order, with a vertical black reference line.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HorizontalBars {
    pub title: String,
    pub x_desc: String,
    pub reference: f64,
    pub bars: Vec<HorizontalBar>,
}

/// Draws `chart` as an SVG document.
pub(super) fn horizontal_bars(chart: &HorizontalBars) -> anyhow::Result<String> {
    let rows = chart.bars.len().max(1);
    let longest = chart
        .bars
        .iter()
        .map(|bar| shorten(&bar.label).chars().count())
        .max()
        .unwrap_or(0);
    let label_width = (longest * 7 + 20).clamp(80, 440) as u32;
    let height = (120 + 30 * rows) as u32;
    let highest = chart
        .bars
        .iter()
        .map(|bar| bar.value)
        .fold(chart.reference, f64::max);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (label_width + 600, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut plot = ChartBuilder::on(&root)
            .caption(shorten(&chart.title), ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..highest * 1.25, 0.0..rows as f64)?;
        plot.configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(chart.x_desc.as_str())
            .draw()?;
        // Row 0 at the top.
        let bottom = |row: usize| (rows - row - 1) as f64;
        plot.draw_series(chart.bars.iter().enumerate().map(|(row, bar)| {
            let corners = [(0.0, bottom(row) + 0.15), (bar.value, bottom(row) + 0.85)];
            Rectangle::new(corners, color(bar.color).filled())
        }))?;
        plot.draw_series(LineSeries::new(
            [(chart.reference, 0.0), (chart.reference, rows as f64)],
            BLACK.stroke_width(2),
        ))?;
        for (row, bar) in chart.bars.iter().enumerate() {
            let (x, y) = plot.backend_coord(&(0.0, bottom(row) + 0.5));
            let style = text_style(13, HPos::Right, VPos::Center);
            root.draw(&Text::new(shorten(&bar.label), (x - 8, y), style))?;
            let (x, y) = plot.backend_coord(&(bar.value, bottom(row) + 0.5));
            let style = text_style(12, HPos::Left, VPos::Center);
            root.draw(&Text::new(bar.value_label.as_str(), (x + 4, y), style))?;
        }
        root.present()?;
    }
    Ok(svg)
}
