-- The rule engine keeps what it reads of rules and zones between passes (its rule book: the
-- rules that apply to each zone, the zones' contexts, the nodes of those zones) and checks, in
-- the round trip that reads the rules' states, that nothing it keeps has changed since. This
-- version counts the committed changes of what it keeps.
CREATE TABLE irrigation_rule_book (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO irrigation_rule_book (version) VALUES (1);

-- Bumped once per transaction, at its commit (the triggers are deferred): the row is locked
-- after every other lock the transaction takes, so concurrent editors cannot deadlock on it,
-- and the new version becomes visible with the change.
CREATE FUNCTION irrigation_rule_book_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('aghali.rule_book_bumped', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('aghali.rule_book_bumped', 'yes', true);
        UPDATE irrigation_rule_book SET version = version + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER rule_book_rules AFTER INSERT OR UPDATE OR DELETE ON rules
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION irrigation_rule_book_changed();
CREATE CONSTRAINT TRIGGER rule_book_zones AFTER INSERT OR UPDATE OR DELETE ON zones
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION irrigation_rule_book_changed();
-- A farm's time zone and location (a zone's local time, sunrise and sunset).
CREATE CONSTRAINT TRIGGER rule_book_farms AFTER UPDATE OF timezone, location ON farms
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone OR OLD.location IS DISTINCT FROM NEW.location)
    EXECUTE FUNCTION irrigation_rule_book_changed();
-- A zone's first valve gives its nominal flow; valves' states and holds change all the time
-- and are not kept.
CREATE CONSTRAINT TRIGGER rule_book_valves_in AFTER INSERT OR DELETE ON valves
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION irrigation_rule_book_changed();
CREATE CONSTRAINT TRIGGER rule_book_valves AFTER UPDATE OF zone_id, nominal_flow_lpm ON valves
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.zone_id IS DISTINCT FROM NEW.zone_id OR OLD.nominal_flow_lpm IS DISTINCT FROM NEW.nominal_flow_lpm)
    EXECUTE FUNCTION irrigation_rule_book_changed();
-- Which nodes are in which zone; their readings and upkeep, and nodes in no zone, are not kept.
CREATE CONSTRAINT TRIGGER rule_book_nodes_added AFTER INSERT ON nodes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.zone_id IS NOT NULL)
    EXECUTE FUNCTION irrigation_rule_book_changed();
CREATE CONSTRAINT TRIGGER rule_book_nodes_removed AFTER DELETE ON nodes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.zone_id IS NOT NULL)
    EXECUTE FUNCTION irrigation_rule_book_changed();
CREATE CONSTRAINT TRIGGER rule_book_nodes AFTER UPDATE OF zone_id ON nodes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.zone_id IS DISTINCT FROM NEW.zone_id)
    EXECUTE FUNCTION irrigation_rule_book_changed();
