package fieldnodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Publisher is the part of an MQTT link command delivery uses; *mqttlink.Link satisfies it.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// ErrCommandExpired: the command's expires_at has passed; it was not sent (a controller would
// ignore it anyway).
var ErrCommandExpired = errors.New("fieldnodes: command expired")

// CommanderConfig configures a Commander. Zero values take the documented defaults.
type CommanderConfig struct {
	// Link publishes the commands (required).
	Link Publisher
	// Prefix is the topic prefix; default "aghali".
	Prefix string
	// Now is the clock for the expiry check; default time.Now.
	Now func() time.Time
}

// Commander delivers valve commands to controllers over MQTT. Package irrigation sends through
// it (it declares an interface with SendCommand).
type Commander struct {
	cfg CommanderConfig
}

// NewCommander checks cfg and returns a Commander.
func NewCommander(cfg CommanderConfig) (*Commander, error) {
	if cfg.Link == nil {
		return nil, errors.New("fieldnodes: CommanderConfig.Link is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "aghali"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Commander{cfg: cfg}, nil
}

// SendCommand publishes cmd as JSON at QoS 1 to {prefix}/controllers/{controllerUID}/cmd and
// returns once the broker acknowledged it (PUBACK), which means the broker holds it for the
// controller's session, not that the controller carried it out: that is the controller's ack.
// A malformed command is a *ValidationError; one past its expires_at is ErrCommandExpired.
func (c *Commander) SendCommand(ctx context.Context, controllerUID string, cmd Command) error {
	if !ValidUID(controllerUID) {
		return invalid("controller_uid", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if err := cmd.validate(); err != nil {
		return err
	}
	if !c.cfg.Now().Before(cmd.ExpiresAt) {
		return fmt.Errorf("command %s to %s: %w at %s", cmd.ID, controllerUID, ErrCommandExpired, cmd.ExpiresAt.UTC().Format(time.RFC3339))
	}
	cmd.ExpiresAt = cmd.ExpiresAt.UTC()
	payload, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("command %s: %w", cmd.ID, err)
	}
	topic := c.cfg.Prefix + "/controllers/" + controllerUID + "/cmd"
	if err := c.cfg.Link.Publish(ctx, topic, 1, false, payload); err != nil {
		return fmt.Errorf("send command %s to %s: %w", cmd.ID, controllerUID, err)
	}
	return nil
}

// validate checks a command against the contract (DESIGN.md, valve controllers).
func (cmd Command) validate() error {
	if cmd.ID == "" {
		return invalid("id", "required")
	}
	if cmd.ExpiresAt.IsZero() {
		return invalid("expires_at", "required: a controller must be able to tell a late command")
	}
	switch cmd.Action {
	case ActionOpen:
		if cmd.Valve < 1 || cmd.Valve > 255 {
			return invalid("valve", "must be 1 to 255")
		}
		if cmd.DurationS <= 0 {
			return invalid("duration_s", "required for open: the controller closes by itself when it runs out")
		}
	case ActionClose:
		if cmd.Valve < 1 || cmd.Valve > 255 {
			return invalid("valve", "must be 1 to 255")
		}
		if cmd.DurationS != 0 {
			return invalid("duration_s", "only for open")
		}
	case ActionCloseAll:
		if cmd.Valve != 0 || cmd.DurationS != 0 {
			return invalid("valve", "close_all takes no valve or duration")
		}
	default:
		return invalid("action", "%q is not open, close or close_all", cmd.Action)
	}
	return nil
}
