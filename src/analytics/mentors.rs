//! Mentor matching on measured gaps: who can teach whom what, and an organisation-wide
//! assignment that maximises the total expected gain under mentor capacities.
//!
//! Expected gain of one skill: mentoring closes `uptake` (default half) of the distance
//! between mentee and mentor, but never beyond the mentee's target level (their role's
//! requirement) when there is one; times the skill's weight. A mentor qualifies in a
//! skill when their level is at least `max(min_level, mentee + min_lead)` (defaults 3.5
//! and 1.5). A mentee's unknown level counts as 0, as in gap analysis.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::ArrayView1;

/// When someone may mentor a skill, and what it is expected to bring.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MentorRules {
    /// Lowest mentor level.
    pub min_level: f32,
    /// How far above the mentee the mentor must be.
    pub min_lead: f32,
    /// Share of the level difference mentoring is expected to close.
    pub uptake: f32,
}

impl Default for MentorRules {
    fn default() -> Self {
        Self {
            min_level: 3.5,
            min_lead: 1.5,
            uptake: 0.5,
        }
    }
}

/// One skill a mentee wants to grow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Need {
    /// Skill column.
    pub column: usize,
    /// The mentee's level, if known.
    pub level: Option<f32>,
    /// Level to reach, if there is one (a role requirement).
    pub target: Option<f32>,
    /// Importance.
    pub weight: f32,
}

impl MentorRules {
    /// Expected gain of a mentor at `mentor_level` for `need`, or `None` when the mentor
    /// does not qualify or nothing is to be gained.
    pub fn gain(&self, need: &Need, mentor_level: f32) -> Option<f32> {
        if mentor_level.is_nan() {
            return None;
        }
        let mentee = need.level.unwrap_or(0.0);
        if mentor_level < self.min_level.max(mentee + self.min_lead) {
            return None;
        }
        let mut gain = self.uptake * (mentor_level - mentee);
        if let Some(target) = need.target {
            gain = gain.min((target - mentee).max(0.0));
        }
        let gain = gain * need.weight;
        (gain > 0.0).then_some(gain)
    }
}

/// Cosine similarity of two profiles, in [0, 1] for non-negative levels (unknown = 0):
/// how alike two people's skill mixes are, the "relatability" of a mentor.
pub fn similarity(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let x = if x.is_nan() { 0.0 } else { f64::from(x) };
        let y = if y.is_nan() { 0.0 } else { f64::from(y) };
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// An organisation-wide mentoring problem: possible pairs with their expected gain.
#[derive(Clone, Debug, Default)]
pub struct PlanProblem {
    /// Number of mentees.
    pub mentees: usize,
    /// Capacity (most mentees) of each mentor.
    pub capacity: Vec<u32>,
    /// Most (further) mentors of each mentee.
    pub max_mentors: Vec<u32>,
    /// `(mentee, mentor, gain)`, gain > 0; at most one per pair.
    pub pairs: Vec<(usize, usize, f64)>,
}

/// A chosen set of pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Indices into the problem's `pairs`, ascending.
    pub chosen: Vec<usize>,
    /// Total expected gain.
    pub total: f64,
}

impl PlanProblem {
    fn plan_of(&self, mut chosen: Vec<usize>) -> Plan {
        chosen.sort_unstable();
        // A fold from +0: an empty sum of f64 is -0, which would show as "-0.00".
        let total = chosen.iter().fold(0.0, |t, &p| t + self.pairs[p].2);
        Plan { chosen, total }
    }

    /// True when `plan` respects every capacity and uses each pair at most once.
    pub fn is_feasible(&self, plan: &Plan) -> bool {
        let mut mentor_load = vec![0u32; self.capacity.len()];
        let mut mentee_load = vec![0u32; self.mentees];
        let mut seen = plan.chosen.clone();
        seen.dedup();
        if seen.len() != plan.chosen.len() {
            return false;
        }
        for &p in &plan.chosen {
            let (mentee, mentor, _) = self.pairs[p];
            mentor_load[mentor] += 1;
            mentee_load[mentee] += 1;
        }
        mentor_load.iter().zip(&self.capacity).all(|(l, c)| l <= c)
            && mentee_load
                .iter()
                .zip(&self.max_mentors)
                .all(|(l, m)| l <= m)
    }
}

/// Gains are scaled to integers for the flow, so that ties and sums are exact.
const SCALE: f64 = 1e6;

/// The plan of greatest total gain: a min-cost flow (source → mentor, capacity = the
/// mentor's; mentor → mentee, capacity 1, cost −gain; mentee → sink, capacity =
/// `max_mentors`) solved by successive shortest paths, stopping when no path adds gain.
/// Each augmentation along a shortest path keeps the flow of its size optimal, so the
/// last one before the cost turns non-negative is the optimum. Paths are found with
/// Dijkstra on costs reduced by node potentials (Johnson), which stay non-negative; the
/// first potentials are the shortest distances in the initial graph, a DAG.
pub fn plan_optimal(problem: &PlanProblem) -> Plan {
    let mentors = problem.capacity.len();
    let source = 0;
    let sink = 1 + mentors + problem.mentees;
    let mut graph = Flow::new(sink + 1);
    for (m, &c) in problem.capacity.iter().enumerate() {
        graph.edge(source, 1 + m, i64::from(c), 0);
    }
    let mut pair_edges = Vec::with_capacity(problem.pairs.len());
    for &(mentee, mentor, gain) in &problem.pairs {
        let cost = -(gain * SCALE).round() as i64;
        pair_edges.push(graph.edge(1 + mentor, 1 + mentors + mentee, 1, cost));
    }
    for e in 0..problem.mentees {
        graph.edge(1 + mentors + e, sink, i64::from(problem.max_mentors[e]), 0);
    }
    // Shortest distances from the source over every edge, capacities aside: source and
    // mentors 0, a mentee its best pair's cost, the sink the best mentee's.
    let mut potential = vec![0i64; graph.head.len()];
    for &edge in &pair_edges {
        let mentee = graph.to[edge];
        potential[mentee] = potential[mentee].min(graph.cost[edge]);
    }
    potential[sink] = potential[1 + mentors..sink]
        .iter()
        .copied()
        .min()
        .unwrap_or(0);
    while graph.augment(source, sink, &mut potential) {}
    let chosen = pair_edges
        .iter()
        .enumerate()
        .filter(|&(_, &edge)| graph.cap[edge] == 0)
        .map(|(p, _)| p)
        .collect();
    problem.plan_of(chosen)
}

/// A plan with what is proven about it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SolvedPlan {
    /// The chosen pairs.
    pub plan: Plan,
    /// No plan over the same pairs and capacities has a greater total (an LP dual bound;
    /// equal to `plan.total` when the plan is proven optimal).
    pub upper_bound: f64,
    /// Solved exactly (min-cost flow) rather than by the auction.
    pub exact: bool,
}

/// Problems with at most this many candidate pairs are solved exactly by the min-cost
/// flow; larger ones by the auction, whose gap to the optimum is bounded and reported.
pub const EXACT_PAIRS: usize = 5_000;

/// The best plan within reach: exact up to `EXACT_PAIRS` candidate pairs, else the
/// ε-scaling auction with its dual bound. `None` when `stop` was set.
pub fn plan_best(problem: &PlanProblem, stop: &AtomicBool) -> Option<SolvedPlan> {
    if problem.pairs.len() <= EXACT_PAIRS {
        let plan = plan_optimal(problem);
        return Some(SolvedPlan {
            upper_bound: plan.total,
            plan,
            exact: true,
        });
    }
    plan_auction(problem, stop)
}

/// An upper bound on every plan's total from mentor prices `price` (any non-negative
/// prices give one, by LP duality): each mentor's capacity times its price, plus for each
/// mentee the sum of its `max_mentors` best gains net of price (the best dual values for
/// the mentee and pair constraints given those prices).
pub fn dual_bound(problem: &PlanProblem, price: &[f64]) -> f64 {
    let mut bound: f64 = problem
        .capacity
        .iter()
        .zip(price)
        .map(|(&c, &p)| f64::from(c) * p)
        .sum();
    let mut net: Vec<Vec<f64>> = vec![Vec::new(); problem.mentees];
    for &(mentee, mentor, gain) in &problem.pairs {
        let value = gain - price[mentor];
        if value > 0.0 {
            net[mentee].push(value);
        }
    }
    for (values, &limit) in net.iter_mut().zip(&problem.max_mentors) {
        values.sort_by(|a, b| b.total_cmp(a));
        bound += values.iter().take(limit as usize).sum::<f64>();
    }
    bound
}

/// ε as a share of the greatest gain: every bidder ends within ε of its best choice at
/// the final prices, so the plan is within (bidders × ε) of the optimum; the reported
/// bound is usually far tighter.
const EPSILON: f64 = 1e-3;

/// The forward auction algorithm (Bertsekas) for large plans. Every mentee's places
/// (`max_mentors` of them) bid for mentors' places (`capacity` each, one price each): a
/// bidder takes the place of best net value (gain minus price) when it is positive,
/// raising its price by the margin over its second best (or staying without a mentor,
/// worth 0) plus ε, and the place's previous holder bids again. Places of one mentee
/// never take the same mentor. It ends when every bidder is placed or has nothing of
/// positive value. Prices start at 0 and a place once taken stays taken, so every place
/// left free is priced 0: with ε-complementary slackness that makes the plan optimal
/// within (bidders × ε). The bound reported is `dual_bound` at the mentors' cheapest
/// place prices (and at zero prices, whichever is less). `None` when `stop` was set.
pub fn plan_auction(problem: &PlanProblem, stop: &AtomicBool) -> Option<SolvedPlan> {
    let max_gain = problem.pairs.iter().map(|p| p.2).fold(0.0, f64::max);
    if max_gain <= 0.0 {
        return Some(SolvedPlan::default());
    }
    let epsilon = max_gain * EPSILON;
    // Pairs by mentee.
    let mut pair_start = vec![0usize; problem.mentees + 1];
    for &(mentee, _, _) in &problem.pairs {
        pair_start[mentee + 1] += 1;
    }
    for i in 0..problem.mentees {
        pair_start[i + 1] += pair_start[i];
    }
    let mut fill = pair_start.clone();
    let mut by_mentee = vec![0usize; problem.pairs.len()];
    for (p, &(mentee, _, _)) in problem.pairs.iter().enumerate() {
        by_mentee[fill[mentee]] = p;
        fill[mentee] += 1;
    }
    // Places: a mentor's `capacity`, a mentee's `max_mentors`.
    let mut slot_start = vec![0usize; problem.capacity.len() + 1];
    for (j, &c) in problem.capacity.iter().enumerate() {
        slot_start[j + 1] = slot_start[j] + c as usize;
    }
    let mut bidder_start = vec![0usize; problem.mentees + 1];
    for (i, &m) in problem.max_mentors.iter().enumerate() {
        bidder_start[i + 1] = bidder_start[i] + m as usize;
    }
    let slots = slot_start[problem.capacity.len()];
    let bidders = bidder_start[problem.mentees];
    let mentee_of: Vec<usize> = (0..problem.mentees)
        .flat_map(|i| std::iter::repeat_n(i, problem.max_mentors[i] as usize))
        .collect();
    const NONE: usize = usize::MAX;
    let mut price = vec![0f64; slots];
    let mut holder = vec![NONE; slots];
    // A bidder's place and the pair it holds it with.
    let mut held = vec![(NONE, NONE); bidders];
    let mut queue: Vec<usize> = (0..bidders).rev().collect();
    let mut bids = 0u64;
    while let Some(b) = queue.pop() {
        bids += 1;
        if bids.is_multiple_of(4096) && stop.load(Ordering::Relaxed) {
            return None;
        }
        let mentee = mentee_of[b];
        let siblings = bidder_start[mentee]..bidder_start[mentee + 1];
        // Best and second-best place (0: no mentor).
        let (mut first, mut first_at, mut second) = (0.0f64, (NONE, NONE), 0.0f64);
        for &p in &by_mentee[pair_start[mentee]..pair_start[mentee + 1]] {
            let (_, mentor, gain) = problem.pairs[p];
            let places = slot_start[mentor]..slot_start[mentor + 1];
            if siblings
                .clone()
                .any(|s| s != b && held[s].0 != NONE && places.contains(&held[s].0))
            {
                continue;
            }
            // The mentor's two cheapest places.
            let (mut cheapest, mut at, mut next) = (f64::INFINITY, NONE, f64::INFINITY);
            for s in places {
                if price[s] < cheapest {
                    next = cheapest;
                    cheapest = price[s];
                    at = s;
                } else if price[s] < next {
                    next = price[s];
                }
            }
            for (value, place) in [(gain - cheapest, at), (gain - next, NONE)] {
                if value > first {
                    second = first;
                    first = value;
                    first_at = (place, p);
                } else if value > second {
                    second = value;
                }
            }
        }
        let (slot, pair) = first_at;
        if slot == NONE {
            continue;
        }
        price[slot] += first - second + epsilon;
        let previous = holder[slot];
        if previous != NONE {
            held[previous] = (NONE, NONE);
            queue.push(previous);
        }
        holder[slot] = b;
        held[b] = (slot, pair);
    }
    let plan = problem.plan_of(held.iter().filter(|h| h.1 != NONE).map(|h| h.1).collect());
    let mentor_price: Vec<f64> = (0..problem.capacity.len())
        .map(|j| {
            price[slot_start[j]..slot_start[j + 1]]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
        })
        .map(|p| if p.is_finite() { p } else { 0.0 })
        .collect();
    let zero = vec![0.0; problem.capacity.len()];
    let bound = dual_bound(problem, &mentor_price).min(dual_bound(problem, &zero));
    Some(SolvedPlan {
        upper_bound: bound.max(plan.total),
        plan,
        exact: false,
    })
}

/// The greedy baseline: pairs by decreasing gain, each taken when capacities allow.
pub fn plan_greedy(problem: &PlanProblem) -> Plan {
    let mut order: Vec<usize> = (0..problem.pairs.len()).collect();
    order.sort_by(|&a, &b| {
        problem.pairs[b]
            .2
            .total_cmp(&problem.pairs[a].2)
            .then(a.cmp(&b))
    });
    let mut mentor_load = vec![0u32; problem.capacity.len()];
    let mut mentee_load = vec![0u32; problem.mentees];
    let mut chosen = Vec::new();
    for p in order {
        let (mentee, mentor, _) = problem.pairs[p];
        if mentor_load[mentor] < problem.capacity[mentor]
            && mentee_load[mentee] < problem.max_mentors[mentee]
        {
            mentor_load[mentor] += 1;
            mentee_load[mentee] += 1;
            chosen.push(p);
        }
    }
    problem.plan_of(chosen)
}

/// A residual graph for successive shortest paths.
struct Flow {
    head: Vec<Option<usize>>,
    next: Vec<Option<usize>>,
    to: Vec<usize>,
    cap: Vec<i64>,
    cost: Vec<i64>,
}

impl Flow {
    fn new(nodes: usize) -> Self {
        Self {
            head: vec![None; nodes],
            next: Vec::new(),
            to: Vec::new(),
            cap: Vec::new(),
            cost: Vec::new(),
        }
    }

    /// Adds an edge and its reverse; returns the forward edge's index.
    fn edge(&mut self, from: usize, to: usize, cap: i64, cost: i64) -> usize {
        let forward = self.to.len();
        for (a, b, c, w) in [(from, to, cap, cost), (to, from, 0, -cost)] {
            self.next.push(self.head[a]);
            self.head[a] = Some(self.to.len());
            self.to.push(b);
            self.cap.push(c);
            self.cost.push(w);
        }
        forward
    }

    /// Pushes flow along one cheapest path if it has negative cost; false otherwise.
    /// `potential` makes every residual edge's reduced cost `cost + p[u] - p[v]`
    /// non-negative, and is updated so that it stays so after the augmentation.
    fn augment(&mut self, source: usize, sink: usize, potential: &mut [i64]) -> bool {
        let n = self.head.len();
        let mut dist = vec![i64::MAX; n];
        let mut done = vec![false; n];
        let mut via: Vec<Option<usize>> = vec![None; n];
        let mut heap = BinaryHeap::from([Reverse((0i64, source))]);
        dist[source] = 0;
        while let Some(Reverse((d, u))) = heap.pop() {
            if done[u] {
                continue;
            }
            done[u] = true;
            if u == sink {
                break;
            }
            let mut e = self.head[u];
            while let Some(edge) = e {
                let v = self.to[edge];
                if self.cap[edge] > 0 && !done[v] {
                    let reduced = self.cost[edge] + potential[u] - potential[v];
                    debug_assert!(reduced >= 0, "negative reduced cost {reduced}");
                    if d + reduced < dist[v] {
                        dist[v] = d + reduced;
                        via[v] = Some(edge);
                        heap.push(Reverse((dist[v], v)));
                    }
                }
                e = self.next[edge];
            }
        }
        if !done[sink] {
            return false;
        }
        // Settled nodes move by their distance, the rest by the sink's: reduced costs
        // stay non-negative on every residual edge, including the new reverse ones.
        let reach = dist[sink];
        for (p, (&d, &settled)) in potential.iter_mut().zip(dist.iter().zip(&done)) {
            *p += if settled { d } else { reach };
        }
        // The path's true cost; the source's potential stays 0.
        if potential[sink] - potential[source] >= 0 {
            return false;
        }
        let mut bottleneck = i64::MAX;
        let mut v = sink;
        while let Some(edge) = via[v] {
            bottleneck = bottleneck.min(self.cap[edge]);
            v = self.to[edge ^ 1];
        }
        let mut v = sink;
        while let Some(edge) = via[v] {
            self.cap[edge] -= bottleneck;
            self.cap[edge ^ 1] += bottleneck;
            v = self.to[edge ^ 1];
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// The best total by exhaustive search: every mentee in turn takes any allowed set
    /// of its pairs (memoised on the remaining capacities).
    fn exhaustive(problem: &PlanProblem) -> f64 {
        fn go(
            problem: &PlanProblem,
            by_mentee: &[Vec<usize>],
            mentee: usize,
            load: &mut Vec<u32>,
            memo: &mut HashMap<(usize, Vec<u32>), i64>,
        ) -> i64 {
            if mentee == problem.mentees {
                return 0;
            }
            if let Some(&v) = memo.get(&(mentee, load.clone())) {
                return v;
            }
            let options = &by_mentee[mentee];
            let mut best = 0;
            for mask in 0u32..(1 << options.len()) {
                if mask.count_ones() > problem.max_mentors[mentee] {
                    continue;
                }
                let picked: Vec<usize> = (0..options.len())
                    .filter(|b| mask & (1 << b) != 0)
                    .map(|b| options[b])
                    .collect();
                if picked
                    .iter()
                    .any(|&p| load[problem.pairs[p].1] >= problem.capacity[problem.pairs[p].1])
                {
                    continue;
                }
                let gain: i64 = picked
                    .iter()
                    .map(|&p| (problem.pairs[p].2 * SCALE).round() as i64)
                    .sum();
                picked.iter().for_each(|&p| load[problem.pairs[p].1] += 1);
                let rest = go(problem, by_mentee, mentee + 1, load, memo);
                picked.iter().for_each(|&p| load[problem.pairs[p].1] -= 1);
                best = best.max(gain + rest);
            }
            memo.insert((mentee, load.clone()), best);
            best
        }
        let mut by_mentee = vec![Vec::new(); problem.mentees];
        for (p, &(mentee, _, _)) in problem.pairs.iter().enumerate() {
            by_mentee[mentee].push(p);
        }
        let mut load = vec![0; problem.capacity.len()];
        go(problem, &by_mentee, 0, &mut load, &mut HashMap::new()) as f64 / SCALE
    }

    fn problem_strategy(
        max_mentees: usize,
        max_mentors: usize,
    ) -> impl Strategy<Value = PlanProblem> {
        (1..=max_mentees, 1..=max_mentors, 1u32..=3, 1u32..=2).prop_flat_map(
            |(mentees, mentors, cap, max)| {
                (
                    prop::collection::vec(
                        prop::option::weighted(0.45, 1u32..1000),
                        mentees * mentors,
                    ),
                    prop::collection::vec(1..=cap, mentors),
                    // Some mentees already have mentors: fewer (or no) more allowed.
                    prop::collection::vec(0..=max, mentees),
                )
                    .prop_map(move |(gains, capacity, max_mentors)| PlanProblem {
                        mentees,
                        capacity,
                        max_mentors,
                        pairs: gains
                            .iter()
                            .enumerate()
                            .filter_map(|(i, g)| {
                                g.map(|g| (i / mentors, i % mentors, f64::from(g) / 100.0))
                            })
                            .collect(),
                    })
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn optimal_plan_equals_exhaustive_search(problem in problem_strategy(12, 8)) {
            let plan = plan_optimal(&problem);
            prop_assert!(problem.is_feasible(&plan));
            let best = exhaustive(&problem);
            prop_assert!((plan.total - best).abs() < 1e-6, "flow {} vs exhaustive {}", plan.total, best);
            prop_assert!(plan.total + 1e-9 >= plan_greedy(&problem).total);
        }

        #[test]
        fn optimal_plan_is_at_least_greedy_on_larger_instances(problem in problem_strategy(60, 30)) {
            let plan = plan_optimal(&problem);
            let greedy = plan_greedy(&problem);
            prop_assert!(problem.is_feasible(&plan) && problem.is_feasible(&greedy));
            prop_assert!(plan.total + 1e-9 >= greedy.total);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn auction_is_feasible_and_its_bound_holds(problem in problem_strategy(12, 8)) {
            let solved = plan_auction(&problem, &AtomicBool::new(false)).expect("not stopped");
            prop_assert!(problem.is_feasible(&solved.plan));
            let best = exhaustive(&problem);
            prop_assert!(solved.plan.total <= best + 1e-6, "auction {} above the optimum {}", solved.plan.total, best);
            prop_assert!(solved.upper_bound + 1e-6 >= best, "bound {} below the optimum {}", solved.upper_bound, best);
        }

        #[test]
        fn auction_is_within_its_epsilon_of_the_flow(problem in problem_strategy(60, 30)) {
            let exact = plan_optimal(&problem);
            let solved = plan_auction(&problem, &AtomicBool::new(false)).expect("not stopped");
            prop_assert!(problem.is_feasible(&solved.plan));
            let max_gain = problem.pairs.iter().map(|p| p.2).fold(0.0, f64::max);
            let bidders: u32 = problem.max_mentors.iter().sum();
            // ε-complementary slackness with every free place priced 0.
            let slack = f64::from(bidders) * EPSILON * max_gain;
            prop_assert!(solved.plan.total + slack + 1e-6 >= exact.total,
                "auction {} vs flow {} (slack {})", solved.plan.total, exact.total, slack);
            prop_assert!(solved.upper_bound + 1e-6 >= exact.total);
            prop_assert!(solved.plan.total <= exact.total + 1e-6);
        }

        #[test]
        fn any_prices_bound_the_optimum(
            problem in problem_strategy(10, 6),
            prices in prop::collection::vec(0.0f64..12.0, 6),
        ) {
            let best = exhaustive(&problem);
            let price = &prices[..problem.capacity.len()];
            prop_assert!(dual_bound(&problem, price) + 1e-6 >= best);
        }
    }

    #[test]
    fn a_stopped_auction_gives_nothing() {
        let mentees = 5_000;
        let big = PlanProblem {
            mentees,
            capacity: vec![1; 10],
            max_mentors: vec![1; mentees],
            pairs: (0..mentees)
                .flat_map(|i| (0..10).map(move |j| (i, j, 1.0 + ((i * 7 + j) % 13) as f64)))
                .collect(),
        };
        assert!(plan_auction(&big, &AtomicBool::new(true)).is_none());
        let solved = plan_best(&big, &AtomicBool::new(false)).expect("not stopped");
        assert!(!solved.exact, "50,000 pairs go to the auction");
        assert!(big.is_feasible(&solved.plan));
        assert!(solved.plan.total <= solved.upper_bound);
    }

    #[test]
    fn greedy_can_be_beaten() {
        // Mentor 0 is the best for both mentees but can take one. Greedy gives it to
        // mentee 0 (10) and leaves mentee 1 without a mentor; the optimum pairs mentee 0
        // with mentor 1 (8) and mentee 1 with mentor 0 (9): 17.
        let problem = PlanProblem {
            mentees: 2,
            capacity: vec![1, 1],
            max_mentors: vec![1, 1],
            pairs: vec![(0, 0, 10.0), (0, 1, 8.0), (1, 0, 9.0)],
        };
        assert_eq!(plan_greedy(&problem).total, 10.0);
        assert_eq!(plan_optimal(&problem).total, 17.0);
    }

    #[test]
    fn gain_rules() {
        let rules = MentorRules::default();
        let need = Need {
            column: 0,
            level: Some(2.0),
            target: Some(3.0),
            weight: 2.0,
        };
        assert_eq!(rules.gain(&need, 3.4), None, "below 3.5");
        assert_eq!(rules.gain(&need, 3.5), Some(1.5), "half of 3.5 - 2, × 2");
        assert_eq!(
            rules.gain(&need, 4.5),
            Some(2.0),
            "capped at the target: (3 - 2) × 2"
        );
        let open = Need {
            target: None,
            ..need
        };
        assert_eq!(rules.gain(&open, 4.0), Some(2.0), "half of 4 - 2, × 2");
        let unknown = Need {
            level: None,
            ..open
        };
        assert_eq!(rules.gain(&unknown, 3.5), Some(3.5));
        assert!(
            (similarity(array![1.0, 0.0].view(), array![2.0, f32::NAN].view()) - 1.0).abs() < 1e-6
        );
    }
}
