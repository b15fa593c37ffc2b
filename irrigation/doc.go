// Package irrigation decides when water flows and makes sure it stops. It owns the irrigation
// registry (zones, water sources, controllers, valves), runs and their transactional command
// outbox, rules, schedules, the weather (ET0) and water balance they decide on, the decisions
// they take and the alerts they raise; subpackages hold the pure parts (rule: the condition
// language and a rule's state machine; schedule: cron in a farm's time zone; agronomy: FAO-56).
//
// The parts, each built on one *Store:
//
//   - Store: the tables, and StartRun/StopRun, which persist a run and queue its command in one
//     transaction and NOTIFY the dispatchers; StartRun admits the run to its water source
//     (interlocks.go); StopFarm (emergency stop) and CreateOverride (manual override) act on a
//     farm or zone in one transaction; InterlockStatus shows it all. docs/irrigation.md is the
//     operator's account.
//   - Dispatcher: sends due commands through a CommandSender (fieldnodes' MQTT link), or, for a
//     LoRaWAN controller, encoded in the compact layout through a DownlinkSender
//     (fieldnodes.Downlinks: ChirpStack command/down, The Things Stack down/push, where the
//     controller was last heard), retrying until a command is acknowledged or expires.
//   - ControllerHandler: applies controllers' acks and state reports (fieldnodes.ControllerHandler),
//     and LoRaWAN controllers' network-server events (fieldnodes.LoRaWANControllerHandler): acks
//     and states on their port, the route their downlinks take, and the network server's word on
//     each downlink (acknowledged by the device counts as the command's ack).
//   - RunMonitor: admits waiting runs (an energy window opened) and aborts those that waited
//     too long, closes out runs past their end, settles runs whose commands are finished, and
//     judges node flow meters.
//   - Engine: rules (expressions over facts, docs/rules.md), evaluated for the zones of the nodes
//     whose readings were just committed (fieldnodes.ReadingsListener) and periodically by the
//     leader; it also answers dry runs.
//   - Weather: ET0 per farm and day (and hour) from the farm's station readings; rain; forecasts.
//   - WaterBalance: each zone's daily FAO-56 root-zone water balance (docs/agronomy.md).
//   - Decider: the Engine, Weather and WaterBalance together, and backtests that replay a rule
//     or a schedule over stored history without acting.
//   - Leader: elects, by a PostgreSQL advisory lock, the one instance that runs the periodic
//     decisions; fail-over when its session ends.
//   - Scheduler: cron schedules (restrictions, skip conditions, seasonal adjustment,
//     cycle-and-soak, water-balance mode), fired by the leader; it also keeps ET0 and the
//     balances up to date.
//
// The long-running parts share Start(ctx) error / Stop(). Time always comes from Config.Now.
//
// # Invariants
//
//   - A valve is never open longer than its zone's max runtime, even if the server dies: a run's
//     duration is capped at max_runtime_s when it is created, and every open command carries it
//     as duration_s, which the controller enforces by itself.
//   - Interlocks are decided in one place: the transaction that admits a run, under the farm's
//     advisory lock, so that instances never decide for one farm at once. An emergency stop or a
//     hold refuses the run; capacity, power budget and energy window make it wait, planned, in
//     its source's queue, admitted in order (priority, then request time; strict FIFO) as
//     others end. The nominal flows of the runs admitted on a source, and of its zone valves
//     reported open without a run, never exceed its flow limit.
//   - A source's pump and master valve are on before its first zone valve opens (a zone's open
//     waits in the outbox for their ack) and off after its last run ended; their duration_s
//     outlasts the zone's, so without the server they switch off after it.
//   - A command is never carried out late: it expires CommandTTL after it is queued; the
//     dispatcher re-checks the clock immediately before each publish and never publishes past
//     expires_at (the controller, too, ignores it then); an expired command fails its run and
//     raises an alert.
//   - A run is persisted before its command is sent: the run, its events and its command are
//     written in one transaction, and only committed commands are dispatched.
//   - Nothing is opened twice: a valve has at most one live run (planned, starting, open,
//     closing), checked under the valve's row lock and enforced by a partial unique index; a
//     command is claimed FOR UPDATE SKIP LOCKED and held while it is published, so two dispatchers
//     never publish it at once; a close still queued for a channel is superseded by a later open
//     so it cannot overtake it; controllers ignore a repeated command id.
//   - A restart resumes, retries or closes out every run: commands are retried from the outbox,
//     and the run monitor closes runs past their end and fails runs whose commands expired.
//   - A valve reported open with no live run is closed and alerted on.
//   - Every decision is recorded with its reason: each run has a reason (a rule's condition and
//     values, a schedule's occurrence, a person) and each state change a run_event with a note;
//     every automatic decision — a rule's act, a veto, a schedule occurrence fired or skipped,
//     a water-balance check — is an irrigation_decisions row with its reason and the facts it
//     saw. Backtests return the same decisions and store none.
//   - Decisions never act on missing data: a rule whose condition needs a fact without data is
//     unknown and does nothing; a skip condition without data does not skip (and says so).
//   - Automatic origins (rule, schedule, water balance) respect a zone's min_off_s after its
//     last run; people may override it.
//   - Rules and schedules never fire twice for one reason: each act re-checks the rule's memory
//     of the zone (rule_states: cooldown, hysteresis, skip/alert in effect) or the schedule's
//     handled_through under the row lock and records it in the run's transaction.
//   - Runs decided by rules, schedules and the water balance go through the same admission as
//     any run (startRun): max runtime, rest, emergency stops, overrides, the source's capacity,
//     power and energy window.
//
// Lock order, everywhere: rule state or schedule → farm (advisory) → valve → run → command. The
// dispatcher locks only commands, never waiting on anything else while it holds them.
//
// # Schedules missed while no scheduler ran
//
// Each schedule records handled_through: every occurrence up to that instant has been fired or
// deliberately skipped. When the leader finds occurrences in (handled_through, now]:
//
//   - only the latest one may fire, and only if it is at most max(duration_s, FireGrace) old
//     (FireGrace defaults to 2 min, so short runs survive a scheduler tick or a quick restart);
//     it runs for its full duration, and its reason says how late it is and how many earlier
//     occurrences were missed;
//   - every other occurrence, and the latest one when it is older than that, is skipped: never
//     fired late, counted, and recorded as an info alert "schedule_skipped" (subject
//     "schedule:<id>") naming the latest missed occurrence and its age;
//   - an occurrence that finds its valve busy or its zone without a valve is skipped and
//     recorded the same way;
//   - changing a schedule's cron expression or day restrictions, or enabling it, starts afresh
//     from that moment;
//   - an occurrence watering in cycles (cycle-and-soak) starts each next cycle when its soak is
//     over; a cycle later than the same limit is dropped and recorded, never run late.
//
// Days excluded by a schedule's weekday or odd/even restriction have no occurrences (nothing is
// missed or recorded). A skip condition, a skip rule or the water balance saying "no" is not a
// miss: it is a decision with its reason.
//
// Daylight saving: occurrences are in the farm's time zone; a wall-clock time repeated when
// clocks go back fires once, and one skipped when they go forward fires at the moment of the
// jump (see package schedule).
//
// # Left for later
//
// Per-controller parallel dispatch, volume attribution from node flow meters (controllers'
// totalisers are attributed), and close_all on controller reconnect.
package irrigation
