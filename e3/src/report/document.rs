//! A report as a list of blocks, rendered both to Markdown and to one self-contained HTML page.

use std::fmt::Write as _;

/// One piece of a report. Text is plain (no markup); each renderer escapes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Block {
    /// A section heading: level 2 for a section, 3 for a part of one.
    Heading {
        level: u8,
        text: String,
    },
    Paragraph(String),
    /// A bulleted list.
    List(Vec<String>),
    Table(Table),
    /// An SVG written next to the report, linked by its relative file name.
    Image {
        alt: String,
        file: String,
    },
}

/// A table: a header row and rows of the same width.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with `header` and no rows yet.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|cell| (*cell).to_owned()).collect(),
            rows: Vec::new(),
        }
    }
}

/// A whole report.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// The page's whole styling: no external fonts, scripts or images besides the report's SVGs.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;\
padding:0 1rem;color:#222}table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid \
#bbb;padding:.25rem .6rem;text-align:left}th{background:#eee}tr:nth-child(even) td{background:\
#f8f8f8}img{max-width:100%;border:1px solid #ddd;margin:.5rem 0}";

impl Document {
    /// The report as Markdown, with images as relative links.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n", escape_markdown(&self.title));
        for block in &self.blocks {
            out.push('\n');
            match block {
                Block::Heading { level, text } => {
                    let hashes = "#".repeat(usize::from(*level));
                    let _ = writeln!(out, "{hashes} {}", escape_markdown(text));
                }
                Block::Paragraph(text) => {
                    let _ = writeln!(out, "{}", escape_markdown(text));
                }
                Block::List(items) => {
                    for item in items {
                        let _ = writeln!(out, "- {}", escape_markdown(item));
                    }
                }
                Block::Table(table) => {
                    markdown_row(&mut out, &table.header);
                    let rule = vec!["---".to_owned(); table.header.len()];
                    markdown_row(&mut out, &rule);
                    for row in &table.rows {
                        markdown_row(&mut out, row);
                    }
                }
                Block::Image { alt, file } => {
                    let alt = escape_markdown(alt).replace(['[', ']'], "");
                    let _ = writeln!(out, "![{alt}]({file})");
                }
            }
        }
        out
    }

    /// The report as one HTML page with inline style, no scripts, and `<img>` links to the SVGs.
    pub fn to_html(&self) -> String {
        let title = escape_html(&self.title);
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        for block in &self.blocks {
            match block {
                Block::Heading { level, text } => {
                    let _ = writeln!(out, "<h{level}>{}</h{level}>", escape_html(text));
                }
                Block::Paragraph(text) => {
                    let _ = writeln!(out, "<p>{}</p>", escape_html(text));
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for item in items {
                        let _ = writeln!(out, "<li>{}</li>", escape_html(item));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(table) => {
                    out.push_str("<table>\n<thead>\n");
                    html_row(&mut out, "th", &table.header);
                    out.push_str("</thead>\n<tbody>\n");
                    for row in &table.rows {
                        html_row(&mut out, "td", row);
                    }
                    out.push_str("</tbody>\n</table>\n");
                }
                Block::Image { alt, file } => {
                    let _ = writeln!(
                        out,
                        "<p><img src=\"{}\" alt=\"{}\"></p>",
                        escape_html(file),
                        escape_html(alt)
                    );
                }
            }
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

/// Appends `| a | b |` and a newline.
fn markdown_row(out: &mut String, cells: &[String]) {
    out.push('|');
    for cell in cells {
        let _ = write!(out, " {} |", escape_markdown(cell));
    }
    out.push('\n');
}

/// Appends `<tr><td>a</td>…</tr>` with `tag` as the cell tag.
fn html_row(out: &mut String, tag: &str, cells: &[String]) {
    out.push_str("<tr>");
    for cell in cells {
        let _ = write!(out, "<{tag}>{}</{tag}>", escape_html(cell));
    }
    out.push_str("</tr>\n");
}

/// `text` safe as HTML element content and as a quoted attribute value.
pub(super) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// `text` on one line, unable to end a table cell or open an HTML tag in Markdown.
fn escape_markdown(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn markdown_keeps_cells_on_one_line_and_tags_closed() {
        assert_eq!(escape_markdown("a|b\n<i>"), "a\\|b &lt;i>");
    }
}
