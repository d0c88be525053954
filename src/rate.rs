//! Per-second budgets: how many things (client frames, presence reports, receipts) one connection
//! may send in a second. A fixed one-second window, restarted by the first spend after it ends:
//! cheap (no clock reads but that spend's), and a client that stays under the budget never
//! notices it.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Budget {
    window: Instant,
    used: u32,
    per_sec: u32,
}

impl Budget {
    pub(crate) fn new(per_sec: u32) -> Self {
        Self {
            window: Instant::now(),
            used: 0,
            per_sec,
        }
    }

    pub(crate) fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// Spends one; `false` (and nothing spent) when this second's budget is used up.
    pub(crate) fn spend(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used >= self.per_sec {
            return false;
        }
        self.used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_allows_its_count_in_a_second_and_no_more() {
        let mut budget = Budget::new(3);
        assert!((0..3).all(|_| budget.spend()));
        assert!(!budget.spend());
        assert!(!budget.spend(), "a refused spend does not spend");
    }
}
