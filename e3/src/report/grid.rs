//! Section 2: the NAT-pair grid, one per candidate: which path the matrix pair (party 0 behind
//! the row profile, party 1 behind the column profile) took, as a table and a coloured SVG.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::document::{Block, Table};
use super::plot::{shorten, text_style};
use super::{Files, MISSING, first_appearance};
use crate::record::{PathKind, Record};

/// Cell colours: direct green, relay amber, failed red, unknown (or no record) grey.
fn fill(path: Option<PathKind>) -> RGBColor {
    match path {
        Some(PathKind::Direct) => RGBColor(129, 199, 132),
        Some(PathKind::Relay) => RGBColor(255, 202, 40),
        Some(PathKind::Failed) => RGBColor(239, 83, 80),
        Some(PathKind::Unknown) | None => RGBColor(200, 200, 200),
    }
}

/// How a path is named in a cell: failures shout.
fn label(path: PathKind) -> &'static str {
    match path {
        PathKind::Failed => "FAILED",
        other => other.as_str(),
    }
}

/// How bad a path is, to show a cell's worst run: failed > relay > direct > unknown.
fn severity(path: PathKind) -> u8 {
    match path {
        PathKind::Unknown => 0,
        PathKind::Direct => 1,
        PathKind::Relay => 2,
        PathKind::Failed => 3,
    }
}

/// The matrix pair's path in `record`: failed for an unsuccessful record, whatever it says.
fn observed(record: &Record) -> PathKind {
    if !record.success {
        return PathKind::Failed;
    }
    record
        .matrix_path()
        .map_or(PathKind::Unknown, |pair| pair.path)
}

/// The path E3's NAT model predicts for the matrix pair of `record`.
fn expected(record: &Record) -> Option<PathKind> {
    record.matrix_path().and_then(|pair| pair.expected)
}

/// A known observed path that differs from the prediction (unknown paths are not mismatches).
fn mismatch(observed: PathKind, expected: Option<PathKind>) -> bool {
    observed != PathKind::Unknown && expected.is_some_and(|expected| expected != observed)
}

/// All runs (and workloads) of one candidate on one (row, column) profile pair.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    worst: PathKind,
    worst_runs: usize,
    runs: usize,
    expected: Option<PathKind>,
}

impl Cell {
    /// Summarises the records of one cell; None when there are none.
    fn of(records: &[&Record]) -> Option<Self> {
        let worst = records
            .iter()
            .map(|record| observed(record))
            .max_by_key(|path| severity(*path))?;
        Some(Self {
            worst,
            worst_runs: records.iter().filter(|r| observed(r) == worst).count(),
            runs: records.len(),
            expected: records.iter().find_map(|record| expected(record)),
        })
    }

    /// `(expected direct)` when the worst run is not what was predicted.
    fn expectation(&self) -> Option<String> {
        let expected = self
            .expected
            .filter(|expected| mismatch(self.worst, Some(*expected)))?;
        Some(format!("(expected {})", expected.as_str()))
    }

    /// `2/3 runs` when the cell has several runs.
    fn run_count(&self) -> Option<String> {
        (self.runs > 1).then(|| format!("{}/{} runs", self.worst_runs, self.runs))
    }

    /// The table text, e.g. `relay (expected direct), 2/3 runs`.
    fn text(&self) -> String {
        let mut text = label(self.worst).to_owned();
        if let Some(expectation) = self.expectation() {
            text = format!("{text} {expectation}");
        }
        if let Some(count) = self.run_count() {
            text = format!("{text}, {count}");
        }
        text
    }
}

/// One candidate's grid: `cells[row][column]`.
#[derive(Debug)]
struct Grid<'a> {
    candidate: &'a str,
    rows: &'a [&'a str],
    columns: &'a [&'a str],
    cells: Vec<Vec<Option<Cell>>>,
}

/// The grid tables, SVGs and mismatch lists for every candidate with matrix records.
pub(super) fn section(records: &[Record], files: &mut Files) -> anyhow::Result<Vec<Block>> {
    let matrix: Vec<(&Record, &str, &str)> = records
        .iter()
        .filter_map(|record| {
            let (row, column) = record.matrix_cell.as_ref()?;
            Some((record, row.as_str(), column.as_str()))
        })
        .collect();
    if matrix.is_empty() {
        return Ok(Vec::new());
    }
    let rows = first_appearance(matrix.iter().map(|(_, row, _)| *row));
    let columns = first_appearance(matrix.iter().map(|(_, _, column)| *column));
    let mut blocks = vec![
        Block::Heading {
            level: 2,
            text: "NAT-pair grid".into(),
        },
        Block::Paragraph(
            "Rows: the profile in front of party 0; columns: the profile in front of party 1. \
             A cell shows the worst path over its runs (failed > relay > direct), the prediction \
             when it differs, and how many runs took that path when there were several."
                .into(),
        ),
    ];
    let candidates = first_appearance(
        matrix
            .iter()
            .map(|(record, _, _)| record.candidate.as_str()),
    );
    for candidate in candidates {
        let ours: Vec<_> = matrix
            .iter()
            .filter(|(record, _, _)| record.candidate == candidate)
            .collect();
        let cells = rows
            .iter()
            .map(|row| {
                let in_row = |column: &&str| {
                    let runs: Vec<&Record> = ours
                        .iter()
                        .filter(|(_, r, c)| r == row && c == column)
                        .map(|(record, _, _)| *record)
                        .collect();
                    Cell::of(&runs)
                };
                columns.iter().map(in_row).collect()
            })
            .collect();
        let grid = Grid {
            candidate,
            rows: &rows,
            columns: &columns,
            cells,
        };
        let file = files.svg_name(&format!("nat-grid-{candidate}"));
        files.write(&file, &draw(&grid)?)?;
        blocks.push(Block::Heading {
            level: 3,
            text: format!("NAT-pair grid: {candidate}"),
        });
        blocks.push(Block::Table(table(&grid)));
        blocks.push(Block::Image {
            alt: format!("NAT-pair grid for {candidate}"),
            file,
        });
        let problems: Vec<String> = ours
            .iter()
            .filter(|(record, _, _)| {
                !record.success || mismatch(observed(record), expected(record))
            })
            .map(|(record, row, column)| problem(record, row, column))
            .collect();
        if !problems.is_empty() {
            blocks.push(Block::Paragraph(format!(
                "Mismatches and failures of {candidate}:"
            )));
            blocks.push(Block::List(problems));
        }
    }
    Ok(blocks)
}

/// The Markdown/HTML table of `grid`.
fn table(grid: &Grid) -> Table {
    let mut header = vec!["party 0 \\ party 1"];
    header.extend(grid.columns.iter().copied());
    let mut table = Table::new(&header);
    for (row, cells) in grid.rows.iter().zip(&grid.cells) {
        let mut line = vec![(*row).to_owned()];
        line.extend(
            cells
                .iter()
                .map(|cell| cell.map_or_else(|| MISSING.to_owned(), |cell| cell.text())),
        );
        table.rows.push(line);
    }
    table
}

/// `home × symmetric, secret_mean run 2: FAILED (expected direct): <first error>`.
fn problem(record: &Record, row: &str, column: &str) -> String {
    let path = observed(record);
    let mut line = format!(
        "{row} × {column}, {} run {}: {}",
        record.workload,
        record.run,
        label(path)
    );
    if let Some(expected) = expected(record).filter(|expected| mismatch(path, Some(*expected))) {
        line = format!("{line} (expected {})", expected.as_str());
    }
    if !record.success {
        let error = record
            .errors
            .first()
            .map_or("no error recorded", String::as_str);
        line = format!("{line}: {error}");
    }
    line
}

/// The whole SVG canvas of a grid.
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Cell size and margins of the grid SVG, in pixels.
const CELL_HEIGHT: i32 = 56;
const TOP: i32 = 80;
const LEGEND_HEIGHT: i32 = 60;

/// Draws `grid` as an SVG: coloured cells with their text, labels, a title and a legend.
fn draw(grid: &Grid) -> anyhow::Result<String> {
    let chars = |labels: &[&str]| {
        let longest = labels.iter().map(|label| shorten(label).chars().count());
        longest.max().unwrap_or(0) as i32
    };
    let left = (chars(grid.rows) * 8 + 30).clamp(100, 400);
    let cell_width = (chars(grid.columns) * 8 + 16).clamp(150, 400);
    let legend_width: i32 = legend()
        .iter()
        .map(|(_, text)| legend_entry_width(text))
        .sum();
    let width = (left + cell_width * grid.columns.len() as i32).max(legend_width) + 20;
    let height = TOP + CELL_HEIGHT * grid.rows.len() as i32 + LEGEND_HEIGHT;
    let mut svg = String::new();
    {
        let size = (width.unsigned_abs(), height.unsigned_abs());
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let title = shorten(&format!("NAT-pair grid: {}", grid.candidate));
        root.draw(&Text::new(
            title,
            (width / 2, 12),
            text_style(20, HPos::Center, VPos::Top),
        ))?;
        let caption = "rows: party 0's profile, columns: party 1's profile";
        root.draw(&Text::new(
            caption,
            (width / 2, 38),
            text_style(14, HPos::Center, VPos::Top),
        ))?;
        for (index, column) in grid.columns.iter().enumerate() {
            let x = left + cell_width * index as i32 + cell_width / 2;
            let style = text_style(14, HPos::Center, VPos::Bottom);
            root.draw(&Text::new(shorten(column), (x, TOP - 6), style))?;
        }
        for (row_index, (row, cells)) in grid.rows.iter().zip(&grid.cells).enumerate() {
            let y = TOP + CELL_HEIGHT * row_index as i32;
            let style = text_style(14, HPos::Right, VPos::Center);
            root.draw(&Text::new(
                shorten(row),
                (left - 10, y + CELL_HEIGHT / 2),
                style,
            ))?;
            for (index, cell) in cells.iter().enumerate() {
                let x = left + cell_width * index as i32;
                draw_cell(&root, cell.as_ref(), (x, y), cell_width)?;
            }
        }
        draw_legend(&root, height - LEGEND_HEIGHT / 2)?;
        root.present()?;
    }
    Ok(svg)
}

/// One cell with its top-left corner at `(x, y)`: its colour, text and a frame when mismatched.
fn draw_cell(
    root: &Area,
    cell: Option<&Cell>,
    (x, y): (i32, i32),
    width: i32,
) -> anyhow::Result<()> {
    let corners = [(x + 1, y + 1), (x + width - 1, y + CELL_HEIGHT - 1)];
    root.draw(&Rectangle::new(
        corners,
        fill(cell.map(|cell| cell.worst)).filled(),
    ))?;
    let center = x + width / 2;
    let Some(cell) = cell else {
        let style = text_style(15, HPos::Center, VPos::Center);
        root.draw(&Text::new(MISSING, (center, y + CELL_HEIGHT / 2), style))?;
        return Ok(());
    };
    let detail: Vec<String> = [cell.expectation(), cell.run_count()]
        .into_iter()
        .flatten()
        .collect();
    let main_y = if detail.is_empty() {
        y + CELL_HEIGHT / 2
    } else {
        y + 20
    };
    let style = text_style(15, HPos::Center, VPos::Center);
    root.draw(&Text::new(label(cell.worst), (center, main_y), style))?;
    if !detail.is_empty() {
        let style = text_style(13, HPos::Center, VPos::Center);
        root.draw(&Text::new(detail.join(", "), (center, y + 40), style))?;
    }
    if cell.expectation().is_some() {
        let frame = [(x + 3, y + 3), (x + width - 3, y + CELL_HEIGHT - 3)];
        root.draw(&Rectangle::new(frame, BLACK.stroke_width(3)))?;
    }
    Ok(())
}

/// The legend's entries: a swatch style and its text.
fn legend() -> [(ShapeStyle, &'static str); 5] {
    [
        (fill(Some(PathKind::Direct)).filled(), "direct"),
        (fill(Some(PathKind::Relay)).filled(), "relay"),
        (fill(Some(PathKind::Failed)).filled(), "failed"),
        (fill(None).filled(), "unknown / no record"),
        (BLACK.stroke_width(3), "framed: not as expected"),
    ]
}

/// The width of one legend entry: swatch, gap, text (about 7 pixels a character), gap.
fn legend_entry_width(text: &str) -> i32 {
    22 + text.chars().count() as i32 * 7 + 24
}

/// The colour legend from x = 20, centred vertically on `y`.
fn draw_legend(root: &Area, y: i32) -> anyhow::Result<()> {
    let mut x = 20;
    for (swatch_style, text) in legend() {
        let swatch = [(x, y - 8), (x + 16, y + 8)];
        root.draw(&Rectangle::new(swatch, swatch_style))?;
        let style = text_style(13, HPos::Left, VPos::Center);
        root.draw(&Text::new(text, (x + 22, y), style))?;
        x += legend_entry_width(text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::PairPath;

    /// A matrix record whose pair took `path` where `direct` was expected.
    fn run(path: PathKind, success: bool) -> Record {
        let pair = PairPath {
            a: 0,
            b: 1,
            path,
            expected: Some(PathKind::Direct),
            configured_rtt_ms: 0.0,
            measured_rtt_ms: None,
            mpc_rtt_ms: None,
        };
        let record = serde_json::json!({
            "scenario": "s", "network": "n", "matrix_cell": ["home", "symmetric"],
            "party_profiles": [], "candidate": "c", "workload": "w", "run": 1, "parties": 2,
            "success": success, "paths": [pair], "setup_seconds": null, "wall_seconds": 1.0,
            "mpc_seconds": null, "throughput_mbit_s": null, "wire_bytes": [],
            "manual_steps": 0, "config_lines": 0, "errors": []
        });
        serde_json::from_value(record).expect("a valid record")
    }

    #[test]
    fn a_cell_shows_its_worst_run_and_how_many_took_it() {
        let direct = run(PathKind::Direct, true);
        let relay = run(PathKind::Relay, true);
        // An unsuccessful run counts as failed whatever its path says.
        let failed = run(PathKind::Direct, false);
        let cell = Cell::of(&[&direct, &relay, &direct]).expect("has runs");
        assert_eq!(cell.text(), "relay (expected direct), 1/3 runs");
        let cell = Cell::of(&[&failed, &relay, &failed]).expect("has runs");
        assert_eq!(cell.text(), "FAILED (expected direct), 2/3 runs");
        assert_eq!(Cell::of(&[&direct]).expect("has a run").text(), "direct");
        let unknown = run(PathKind::Unknown, true);
        assert_eq!(Cell::of(&[&unknown]).expect("has a run").text(), "unknown");
        assert_eq!(Cell::of(&[]), None);
        assert_eq!(
            problem(&failed, "home", "symmetric"),
            "home × symmetric, w run 1: FAILED (expected direct): no error recorded"
        );
    }
}
