//! What a workload printed and whether it is right: every party prints one `RESULT key=value …`
//! line; each known program has an answer check, and the figures E3 reports (the program's own
//! seconds after connecting, bytes it sent, round trips it measured) come from the same line.

use std::collections::BTreeMap;

/// The answer checks E3 knows, by name.
pub const CHECKS: &[&str] = &[
    "secret_mean",
    "many_rounds",
    "bulk_transfer",
    "ping_pong",
    "two_sessions",
];

/// A party's `RESULT` line as key → value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultLine(BTreeMap<String, String>);

impl ResultLine {
    /// The last line starting with `RESULT ` in a party's standard output.
    pub fn find(stdout: &str) -> Option<Self> {
        let line = stdout
            .lines()
            .rev()
            .find(|line| line.starts_with("RESULT "))?;
        let pairs = line
            .split_whitespace()
            .skip(1)
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Some(Self(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }

    /// The program's own seconds after every party connected.
    pub fn seconds(&self) -> Option<f64> {
        self.number("seconds")
    }

    /// When (Unix seconds) every party was connected, as this party saw it.
    pub fn connected_unix(&self) -> Option<f64> {
        self.number("connected_unix")
    }

    /// Bytes this party's MPyC sent.
    pub fn bytes_sent(&self) -> Option<f64> {
        self.number("bytes_sent")
    }

    /// Median round trips this party measured: `rtt_ms=0-1:0.25,0-2:0.3` → [(0, 1, 0.25), …].
    pub fn pair_rtts_ms(&self) -> Vec<(u16, u16, f64)> {
        let Some(list) = self.get("rtt_ms") else {
            return Vec::new();
        };
        list.split(',')
            .filter_map(|entry| {
                let (pair, ms) = entry.split_once(':')?;
                let (a, b) = pair.split_once('-')?;
                Some((a.parse().ok()?, b.parse().ok()?, ms.parse().ok()?))
            })
            .collect()
    }
}

/// Checks one party's answer; the error says what was expected.
pub fn check(
    check: &str,
    args: &[String],
    parties: u16,
    result: &ResultLine,
) -> Result<(), String> {
    let m = u64::from(parties);
    let first_arg = |default: u64| -> Result<u64, String> {
        args.first().map_or(Ok(default), |arg| {
            arg.parse()
                .map_err(|_| format!("argument {arg:?} is not a number"))
        })
    };
    let expect = |key: &str, wanted: String| -> Result<(), String> {
        match result.get(key) {
            Some(got) if got == wanted => Ok(()),
            got => Err(format!(
                "{key}={} where {wanted} is right",
                got.unwrap_or("(missing)")
            )),
        }
    };
    match check {
        "secret_mean" => {
            let total = match args.first() {
                Some(_) => first_arg(0)? * m,
                None => 5 * m * (m + 1),
            };
            expect("sum", total.to_string())?;
            expect("parties", m.to_string())
        }
        "many_rounds" => {
            let steps = first_arg(300)?;
            expect("counter", steps.min(m * (m + 1) / 2).to_string())?;
            expect("steps", steps.to_string())
        }
        "bulk_transfer" => {
            expect("length", first_arg(20_000)?.to_string())?;
            expect("correct", "True".into())
        }
        "ping_pong" => {
            expect("rounds", first_arg(50)?.to_string())?;
            expect("correct", "True".into())
        }
        "two_sessions" => {
            expect("sum", (m * (m + 1) / 2).to_string())?;
            expect("max", m.to_string())
        }
        other => Err(format!("no answer check named {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_found_and_read() {
        let stdout = "noise\nRESULT rounds=5 correct=True rtt_ms=0-1:0.250,0-2:1.5 seconds=0.125\n";
        let result = ResultLine::find(stdout).expect("found");
        assert_eq!(result.seconds(), Some(0.125));
        assert_eq!(result.pair_rtts_ms(), vec![(0, 1, 0.25), (0, 2, 1.5)]);
        assert_eq!(ResultLine::find("no result\n"), None);
        assert!(
            ResultLine::find("RESULT rtt_ms=none")
                .expect("found")
                .pair_rtts_ms()
                .is_empty()
        );
    }

    #[test]
    fn answers_are_checked() {
        let line = |text: &str| ResultLine::find(text).expect("line");
        let sum = line("RESULT sum=60 mean=20 parties=3 seconds=0.01");
        assert_eq!(check("secret_mean", &[], 3, &sum), Ok(()));
        assert!(check("secret_mean", &[], 2, &sum).is_err_and(|e| e.contains("sum=60 where 30")));
        assert_eq!(
            check(
                "secret_mean",
                &["7".into()],
                3,
                &line("RESULT sum=21 parties=3")
            ),
            Ok(())
        );
        assert_eq!(
            check(
                "many_rounds",
                &["50".into()],
                3,
                &line("RESULT counter=6 steps=50")
            ),
            Ok(())
        );
        assert!(
            check(
                "bulk_transfer",
                &[],
                3,
                &line("RESULT length=20000 correct=False")
            )
            .is_err()
        );
        assert!(
            check("ping_pong", &["x".into()], 3, &line("RESULT rounds=1"))
                .is_err_and(|e| e.contains("not a number"))
        );
        assert_eq!(
            check("two_sessions", &[], 3, &line("RESULT sum=6 max=3")),
            Ok(())
        );
    }
}
