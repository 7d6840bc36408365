//! Appends one run's results to `docs/benchmarks.md` as a dated section, with
//! each figure next to the same figure of the previous run, so a change that
//! slows something shows.

use std::{collections::HashMap, fmt::Write as _, path::PathBuf};

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Tab-separated result lines: label, value, unit, target.
    #[arg(long)]
    results: PathBuf,
    /// The document to append to; earlier runs in it are the "previous" figures.
    #[arg(long)]
    docs: PathBuf,
    /// The section's heading after "Run ", e.g. the date.
    #[arg(long)]
    title: String,
    /// Markdown put between the heading and the table (machine, commands).
    #[arg(long)]
    preamble: PathBuf,
}

/// Marks a section written by this command; previous figures come only from those.
const RUN_HEADING: &str = "## Run ";
/// A figure this much worse than the previous run's is flagged.
const REGRESSION: f64 = 0.10;

pub fn run(args: &Args) -> anyhow::Result<()> {
    let results = std::fs::read_to_string(&args.results).context("reading the results")?;
    let existing = std::fs::read_to_string(&args.docs).unwrap_or_default();
    let preamble = std::fs::read_to_string(&args.preamble).context("reading the preamble")?;
    let previous = previous_figures(&existing);
    let section = render(&args.title, &preamble, &results, &previous);
    let mut text = existing;
    if !text.is_empty() && !text.ends_with("\n\n") {
        text.push('\n');
    }
    text.push_str(&section);
    std::fs::write(&args.docs, text)?;
    print!("{section}");
    Ok(())
}

/// The last recorded value of each label in earlier run sections.
fn previous_figures(docs: &str) -> HashMap<String, f64> {
    let mut figures = HashMap::new();
    let mut in_run = false;
    for line in docs.lines() {
        if line.starts_with("## ") {
            in_run = line.starts_with(RUN_HEADING);
        }
        if !in_run {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| label | value | unit | ..." splits into ["", label, value, unit, ...].
        if cells.len() >= 5 && cells[0].is_empty() {
            if let Ok(value) = cells[2].parse::<f64>() {
                figures.insert(cells[1].to_owned(), value);
            }
        }
    }
    figures
}

fn higher_is_better(unit: &str) -> bool {
    unit.ends_with("/s") || unit == "%"
}

/// `Some(met)` for a target such as `<=5`, `>=50`, `<5`.
fn meets(value: f64, target: &str) -> Option<bool> {
    let target = target.trim();
    let parse = |s: &str| s.trim().parse::<f64>().ok();
    if let Some(n) = target.strip_prefix("<=").and_then(parse) {
        Some(value <= n)
    } else if let Some(n) = target.strip_prefix(">=").and_then(parse) {
        Some(value >= n)
    } else if let Some(n) = target.strip_prefix('<').and_then(parse) {
        Some(value < n)
    } else {
        target.strip_prefix('>').and_then(parse).map(|n| value > n)
    }
}

fn render(title: &str, preamble: &str, results: &str, previous: &HashMap<String, f64>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{RUN_HEADING}{title}\n");
    out.push_str(preamble.trim_end());
    out.push_str("\n\n| measurement | value | unit | previous run | change | target |\n");
    out.push_str("| --- | ---: | --- | ---: | ---: | --- |\n");
    let mut missed = Vec::new();
    for line in results.lines().filter(|l| !l.trim().is_empty()) {
        let mut cells = line.split('\t');
        let (label, value, unit, target) = (
            cells.next().unwrap_or(""),
            cells.next().unwrap_or(""),
            cells.next().unwrap_or(""),
            cells.next().unwrap_or(""),
        );
        let number = value.parse::<f64>().ok();
        let (prev, change) = match (number, previous.get(label)) {
            (Some(now), Some(&before)) => {
                let change = if before == 0.0 {
                    String::new()
                } else {
                    let ratio = (now - before) / before.abs();
                    let worse = if higher_is_better(unit) {
                        -ratio
                    } else {
                        ratio
                    };
                    let flag = if worse > REGRESSION { " ⚠ worse" } else { "" };
                    format!("{:+.0}%{flag}", ratio * 100.0)
                };
                (before.to_string(), change)
            }
            _ => ("–".to_owned(), String::new()),
        };
        let verdict = match number.and_then(|n| meets(n, target)) {
            Some(true) => format!("{target} ✅"),
            Some(false) => {
                missed.push(format!("{label}: {value} {unit} (target {target})"));
                format!("{target} ❌ missed")
            }
            None => target.to_owned(),
        };
        let _ = writeln!(
            out,
            "| {label} | {value} | {unit} | {prev} | {change} | {verdict} |"
        );
    }
    if missed.is_empty() {
        out.push_str("\nEvery target with a figure above was met.\n\n");
    } else {
        out.push_str("\nTargets missed in this run (see \"Where targets are missed\" above for what bounds them):\n\n");
        for m in missed {
            let _ = writeln!(out, "- {m}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn compares_with_the_last_run_and_checks_targets() {
        let docs = "# Benchmarks\n\n| intro | 1 | ms | | | |\n\n## Run A\n\n| hit rps | 1000 | req/s | – | | |\n| miss p50 | 4 | ms | – | | <=5 |\n";
        let previous = previous_figures(docs);
        assert_eq!(previous.get("hit rps"), Some(&1000.0));
        assert!(!previous.contains_key("intro"));
        let section = render(
            "B",
            "machine",
            "hit rps\t800\treq/s\t\nmiss p50\t6\tms\t<=5\n",
            &previous,
        );
        assert!(
            section.contains("| hit rps | 800 | req/s | 1000 | -20% ⚠ worse |  |"),
            "{section}"
        );
        assert!(
            section.contains("| miss p50 | 6 | ms | 4 | +50% ⚠ worse | <=5 ❌ missed |"),
            "{section}"
        );
        assert!(section.contains("- miss p50: 6 ms (target <=5)"));
        assert!(section.starts_with("## Run B\n\nmachine\n"));
    }

    #[test]
    fn targets() {
        assert_eq!(meets(5.0, "<=5"), Some(true));
        assert_eq!(meets(5.0, "<5"), Some(false));
        assert_eq!(meets(50.0, ">=50"), Some(true));
        assert_eq!(meets(1.0, ""), None);
    }
}
