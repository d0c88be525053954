//! Benchmark figures quoted in the README and in `docs/` are the ones BENCHMARKS.md reports now,
//! not those of an older build. A figure quoted in `docs/` is written as a link to the section of
//! BENCHMARKS.md it comes from (`[11.6 KB](../BENCHMARKS.md#capacity-model)`), and every number
//! in the link's text must be in that section; the README's performance table must agree with the
//! results table. A number matches when it is a figure of the section rounded as it is written,
//! in the same unit or a thousandth of it (11.6 KB for 11,641 bytes, 2.6 s for 2,592.8 ms).

use std::{collections::BTreeMap, path::Path};

fn repository_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The numbers written in `text`, as written (`12,000`, `9.46`, `0`).
fn numbers(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_digit() {
            at += 1;
            continue;
        }
        let start = at;
        // A ',' or '.' belongs to the number only between two digits.
        while at < bytes.len()
            && (bytes[at].is_ascii_digit()
                || (matches!(bytes[at], b',' | b'.')
                    && bytes.get(at + 1).is_some_and(u8::is_ascii_digit)))
        {
            at += 1;
        }
        found.push(&text[start..at]);
    }
    found
}

fn value(number: &str) -> f64 {
    number.replace(',', "").parse().expect("a number")
}

/// Whether `figure` is a number of `text` rounded as `figure` is written, in the same unit or a
/// thousandth of it.
fn appears(figure: &str, text: &str) -> bool {
    let decimals = figure.split_once('.').map_or(0, |(_, d)| d.len());
    let scale = 10f64.powi(i32::try_from(decimals).expect("few decimals"));
    let wanted = (value(figure) * scale).round();
    numbers(text).into_iter().any(|number| {
        [1.0, 1000.0]
            .iter()
            .any(|unit| (value(number) / unit * scale).round() == wanted)
    })
}

/// GitHub's anchor for a heading: lowercase, spaces as '-', other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Each section of a Markdown text by its anchor: its heading to the next heading of the same or
/// a higher level, subsections included.
fn sections(markdown: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let level = |line: &str| {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        (hashes > 0 && line[hashes..].starts_with(' ')).then_some(hashes)
    };
    let mut found = BTreeMap::new();
    for (at, line) in lines.iter().enumerate() {
        let Some(depth) = level(line) else {
            continue;
        };
        let end = lines[at + 1..]
            .iter()
            .position(|l| level(l).is_some_and(|d| d <= depth))
            .map_or(lines.len(), |n| at + 1 + n);
        found.insert(anchor(&line[depth..]), lines[at..end].join("\n"));
    }
    found
}

/// Links to BENCHMARKS.md in `markdown`: their text, and the anchor they point at (if any).
fn benchmark_links(markdown: &str) -> Vec<(&str, Option<&str>)> {
    let mut links = Vec::new();
    for (at, _) in markdown.match_indices("](") {
        let Some(open) = markdown[..at].rfind('[') else {
            continue;
        };
        let target = &markdown[at + 2..];
        let Some(close) = target.find(')') else {
            continue;
        };
        let (text, target) = (&markdown[open + 1..at], &target[..close]);
        if let Some((file, anchor)) = target.split_once("BENCHMARKS.md")
            && (file.is_empty() || file.ends_with('/'))
        {
            links.push((text, anchor.strip_prefix('#')));
        }
    }
    links
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "figures that BENCHMARKS.md does not report (any more):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn figures_linked_from_the_docs_are_in_the_benchmark_section_they_link() {
    let benchmarks = sections(&repository_file("BENCHMARKS.md"));
    let mut documents = vec!["README.md".to_owned()];
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")).expect("docs/")
    {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".md") {
            documents.push(format!("docs/{name}"));
        }
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    for document in &documents {
        let text = repository_file(document);
        for (link, anchor) in benchmark_links(&text) {
            let figures = numbers(link);
            if figures.is_empty() {
                continue;
            }
            let Some(section) = anchor.and_then(|a| benchmarks.get(a)) else {
                problems.push(format!(
                    "{document}: [{link}] must link the section of BENCHMARKS.md it quotes (#{})",
                    anchor.unwrap_or("")
                ));
                continue;
            };
            for figure in figures {
                checked += 1;
                if !appears(figure, section) {
                    problems.push(format!(
                        "{document}: [{link}]: {figure} is not in BENCHMARKS.md#{}",
                        anchor.unwrap_or("")
                    ));
                }
            }
        }
    }
    assert_no_problems(&problems);
    assert!(checked > 0, "docs/deploy.md quotes its figures as links");
}

#[test]
fn the_readme_performance_table_is_in_the_benchmark_results() {
    let readme = sections(&repository_file("README.md"));
    let results = sections(&repository_file("BENCHMARKS.md"));
    let results = results.get("results").expect("BENCHMARKS.md has Results");
    let performance = readme.get("performance").expect("README has Performance");
    let mut problems = Vec::new();
    let rows = performance
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| |"));
    let mut checked = 0;
    for row in rows {
        // The first cell names the scenario (its numbers are parameters); the others are figures.
        for cell in row.trim_matches('|').split('|').skip(1) {
            for figure in numbers(cell) {
                checked += 1;
                if !appears(figure, results) {
                    problems.push(format!("README.md: {figure} in {:?}", row.trim()));
                }
            }
        }
    }
    assert_no_problems(&problems);
    assert!(checked > 0, "the README's performance table has figures");
}

#[test]
fn a_stale_figure_is_told_from_a_current_one() {
    let section = "| idle RSS per WebSocket (bytes) | 11,641 |\n| emit p99 | 8.2 ms | 2,592.8 ms |";
    for current in ["11.6", "11,641", "8.2", "2.6"] {
        assert!(appears(current, section), "{current}");
    }
    for stale in ["16.4", "9.6", "14,500"] {
        assert!(!appears(stale, section), "{stale}");
    }
}
