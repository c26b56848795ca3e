//! `e3 report`: turns the records of a results directory into `report.md`, `report.html` and
//! SVG plots next to them.
//!
//! Everything is ordered by first appearance in the records (the scenario lists networks,
//! profiles and candidates in a meaningful order) and numbers are printed with three
//! significant digits, so a re-run over the same records writes byte-identical files.

mod document;
mod faults;
mod grid;
mod plot;
mod tables;
#[cfg(test)]
mod tests;
mod timing;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::record::Record;
use document::{Block, Document};

/// The candidate every other one is compared with in the overhead section.
const BASELINE: &str = "plain";
/// The candidate set side by side with every other overlay.
const CHALLENGER: &str = "mpcnet";

/// Shown in a table cell for a value that was not measured.
const MISSING: &str = "–";

/// A results directory's hand-written reading of its records, shown after the header.
pub const ANALYSIS_FILE: &str = "analysis.txt";

/// Writes `report.md`, `report.html` and the SVG plots for `records` into `dir`, and returns
/// the paths written (SVGs first, in the order the report shows them). The report opens with
/// `dir/analysis.txt` when there is one.
pub fn write_report(records: &[Record], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Files::new(dir);
    let mut blocks = header(records);
    let analysis = dir.join(ANALYSIS_FILE);
    if analysis.is_file() {
        let text = std::fs::read_to_string(&analysis)
            .with_context(|| format!("reading {}", analysis.display()))?;
        blocks.extend(analysis_section(&text));
    }
    blocks.extend(grid::section(records, &mut files)?);
    blocks.extend(faults::faults_section(records));
    blocks.extend(timing::sections(records, &mut files)?);
    blocks.extend(tables::rtt_section(records));
    blocks.extend(tables::effort_section(records));
    blocks.extend(tables::failures_section(records));
    let document = Document {
        title: "E3 report".into(),
        blocks,
    };
    files.write("report.md", &document.to_markdown())?;
    files.write("report.html", &document.to_html())?;
    Ok(files.written)
}

/// Section 1: what was run, how much of it worked, and how to read the rest.
fn header(records: &[Record]) -> Vec<Block> {
    let ok = records.iter().filter(|record| record.success).count();
    let scenarios = first_appearance(records.iter().map(|record| record.scenario.as_str()));
    let networks = first_appearance(records.iter().map(|record| record.network.as_str()));
    vec![
        Block::List(vec![
            format!("Scenarios: {}", join_or_none(&scenarios)),
            format!(
                "Records: {} ({ok} succeeded, {} failed) over {} networks",
                records.len(),
                records.len() - ok,
                networks.len()
            ),
            format!("Candidates: {}", join_or_none(&candidates(records))),
        ]),
        Block::Paragraph(format!(
            "How to read: times are medians over the successful runs, \"{MISSING}\" means not \
             measured, a ratio above 1 means slower than {BASELINE}, and every number has \
             three significant digits."
        )),
    ]
}

/// Section 2, when written: plain-text paragraphs separated by blank lines; a paragraph whose
/// lines all start with `- ` is a list.
fn analysis_section(text: &str) -> Vec<Block> {
    let mut blocks = vec![Block::Heading {
        level: 2,
        text: "Analysis".into(),
    }];
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let lines: Vec<&str> = paragraph.lines().map(str::trim).collect();
        let items: Option<Vec<String>> = lines
            .iter()
            .map(|line| line.strip_prefix("- ").map(str::to_owned))
            .collect();
        blocks.push(match items {
            Some(items) => Block::List(items),
            None => Block::Paragraph(lines.join(" ")),
        });
    }
    blocks
}

/// The candidates in order of first appearance; a candidate's index picks its plot colour.
fn candidates(records: &[Record]) -> Vec<&str> {
    first_appearance(records.iter().map(|record| record.candidate.as_str()))
}

/// The distinct items, in the order they first appear.
fn first_appearance<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(*item))
        .collect()
}

/// `a, b, c`, or `none` for an empty list.
fn join_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The median of `values` (the mean of the middle two for an even count); None when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        len if len % 2 == 1 => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2.0),
    }
}

/// `value` with three significant digits (`2.00`, `0.0123`, `1230`); [`MISSING`] if not finite.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return MISSING.into();
    }
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = |value: f64| value.abs().log10().floor() as i32;
    let step = 10f64.powi(magnitude(value) - 2);
    let rounded = (value / step).round() * step;
    let decimals = (2 - magnitude(rounded)).max(0) as usize;
    format!("{rounded:.decimals$}")
}

/// [`number`] for an optional value, [`MISSING`] when None.
fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| MISSING.into(), number)
}

/// The files a report writes into its directory, with unique names.
#[derive(Debug)]
struct Files<'a> {
    dir: &'a Path,
    names: BTreeSet<String>,
    written: Vec<PathBuf>,
}

impl<'a> Files<'a> {
    fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            names: BTreeSet::new(),
            written: Vec::new(),
        }
    }

    /// A new file name `<slug of stem>.svg`, with `-2`, `-3`… when two stems slug alike.
    fn svg_name(&mut self, stem: &str) -> String {
        let base = slug(stem);
        let mut candidate = format!("{base}.svg");
        let mut counter = 2;
        while !self.names.insert(candidate.clone()) {
            candidate = format!("{base}-{counter}.svg");
            counter += 1;
        }
        candidate
    }

    /// Writes `contents` to `dir/name` and remembers the path.
    fn write(&mut self, name: &str, contents: &str) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        self.written.push(path);
        Ok(())
    }
}

/// `name` as lower-case ASCII letters, digits and single dashes, safe in a file name and a URL.
pub(crate) fn slug(name: &str) -> String {
    let mut slug = String::new();
    for character in name.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "unnamed".into()
    } else {
        slug.into()
    }
}
