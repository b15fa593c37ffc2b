package irrigation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
)

// SecretIssuer creates (or replaces) the MQTT password of a device and returns it in clear,
// once. Package fieldnodes satisfies it; kind is "controller" here.
type SecretIssuer interface {
	NewSecret(ctx context.Context, uid, kind string) (secret string, err error)
}

// Transports a controller is reached by.
const (
	TransportMQTT    = "mqtt"
	TransportLoRaWAN = "lorawan"
)

// Controller drives the valves numbered 1…255 on its channels.
type Controller struct {
	ID        int64
	UID       string // MQTT user name and topic id: [A-Za-z0-9._-]{1,64}
	FarmID    int64
	Name      string
	Transport string  // mqtt (default) or lorawan
	DevEUI    *string // 16 lower-case hex digits; required for lorawan
	// LoRaWANClass is A (default for LoRaWAN: a downlink waits for the controller's next
	// uplink) or C (listens continuously); nil for MQTT controllers.
	LoRaWANClass *string
	// LoRaWANFPort carries commands down and acks and states up; nil: DefaultLoRaWANFPort.
	LoRaWANFPort *int
	// LoRaWANNetwork and LoRaWANRoute are where a LoRaWAN controller was last heard: its network
	// server (chirpstack, tts) and the values of its event topic's placeholders, which its
	// downlinks' topic is made of. Learned from its events; nil until it is first heard.
	LoRaWANNetwork *string
	LoRaWANRoute   map[string]string
	Location       *geom.Point
	LastSeenAt     *time.Time
	FlowLPM        *float64
	VolumeL        *float64
	CreatedAt      time.Time
}

var (
	uidPattern    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	devEUIPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

func validateController(c *Controller) error {
	c.UID = strings.TrimSpace(c.UID)
	if !uidPattern.MatchString(c.UID) {
		return invalid("uid", "%q: want 1 to 64 letters, digits, '.', '_' or '-'", c.UID)
	}
	if c.Transport == "" {
		c.Transport = TransportMQTT
	}
	switch c.Transport {
	case TransportMQTT, TransportLoRaWAN:
	default:
		return invalid("transport", "%q is not one of mqtt, lorawan", c.Transport)
	}
	if c.DevEUI != nil {
		eui := strings.ToLower(strings.ReplaceAll(*c.DevEUI, ":", ""))
		if !devEUIPattern.MatchString(eui) {
			return invalid("dev_eui", "%q is not 16 hex digits", *c.DevEUI)
		}
		c.DevEUI = &eui
	}
	if c.Transport == TransportLoRaWAN && c.DevEUI == nil {
		return invalid("dev_eui", "required for a LoRaWAN controller")
	}
	if c.Transport != TransportLoRaWAN {
		if c.LoRaWANClass != nil || c.LoRaWANFPort != nil {
			return invalid("lorawan_class", "only for a LoRaWAN controller")
		}
		return nil
	}
	if c.LoRaWANClass == nil {
		a := "A"
		c.LoRaWANClass = &a
	}
	if *c.LoRaWANClass != "A" && *c.LoRaWANClass != "C" {
		return invalid("lorawan_class", "%q is not A or C", *c.LoRaWANClass)
	}
	if c.LoRaWANFPort != nil && (*c.LoRaWANFPort < 1 || *c.LoRaWANFPort > 223) {
		return invalid("lorawan_fport", "%d is not 1–223", *c.LoRaWANFPort)
	}
	return nil
}

const controllerColumns = `id, uid, farm_id, name, transport, dev_eui, geom, last_seen_at, flow_lpm, volume_l, created_at,
	lorawan_class, lorawan_fport, lorawan_network, lorawan_route`

func scanController(row pgx.Row) (Controller, error) {
	var c Controller
	err := row.Scan(&c.ID, &c.UID, &c.FarmID, &c.Name, &c.Transport, &c.DevEUI, &c.Location, &c.LastSeenAt,
		&c.FlowLPM, &c.VolumeL, &c.CreatedAt, &c.LoRaWANClass, &c.LoRaWANFPort, &c.LoRaWANNetwork, &c.LoRaWANRoute)
	return c, interpretError(err, "controller")
}

// CreateController stores a new controller. An MQTT controller gets its password from the
// SecretIssuer; it is returned here once and never again (only its hash is kept). A LoRaWAN
// controller has none (secret is empty).
func (s *Store) CreateController(ctx context.Context, c Controller) (_ Controller, secret string, _ error) {
	if err := validateController(&c); err != nil {
		return Controller{}, "", err
	}
	created, err := scanController(s.db.QueryRow(ctx, `INSERT INTO controllers (uid, farm_id, name, transport, dev_eui, geom, created_at,
			lorawan_class, lorawan_fport)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+controllerColumns,
		c.UID, c.FarmID, c.Name, c.Transport, c.DevEUI, c.Location, s.now(), c.LoRaWANClass, c.LoRaWANFPort))
	if err != nil {
		return Controller{}, "", err
	}
	if created.Transport != TransportMQTT {
		return created, "", nil
	}
	// The uid is ours now (unique), so issuing cannot overwrite another controller's secret.
	secret, err = s.secrets.NewSecret(ctx, created.UID, "controller")
	if err != nil {
		if _, derr := s.db.Exec(context.WithoutCancel(ctx), `DELETE FROM controllers WHERE id = $1`, created.ID); derr != nil {
			s.log.Error("controller without a secret left behind", "controller", created.ID, "err", derr)
		}
		return Controller{}, "", fmt.Errorf("issue the secret of controller %q: %w", created.UID, err)
	}
	return created, secret, nil
}

// RotateControllerSecret replaces an MQTT controller's password and returns the new one, once.
func (s *Store) RotateControllerSecret(ctx context.Context, id int64) (string, error) {
	c, err := s.Controller(ctx, id)
	if err != nil {
		return "", err
	}
	if c.Transport != TransportMQTT {
		return "", invalid("transport", "a %s controller has no MQTT secret", c.Transport)
	}
	secret, err := s.secrets.NewSecret(ctx, c.UID, "controller")
	if err != nil {
		return "", fmt.Errorf("issue the secret of controller %q: %w", c.UID, err)
	}
	return secret, nil
}

// Controller returns one controller.
func (s *Store) Controller(ctx context.Context, id int64) (Controller, error) {
	return scanController(s.db.QueryRow(ctx, `SELECT `+controllerColumns+` FROM controllers WHERE id = $1`, id))
}

// ControllerByUID returns the controller with this MQTT uid.
func (s *Store) ControllerByUID(ctx context.Context, uid string) (Controller, error) {
	return scanController(s.db.QueryRow(ctx, `SELECT `+controllerColumns+` FROM controllers WHERE uid = $1`, uid))
}

// Controllers lists the controllers of a farm.
func (s *Store) Controllers(ctx context.Context, farmID int64) ([]Controller, error) {
	rows, err := s.db.Query(ctx, `SELECT `+controllerColumns+` FROM controllers WHERE farm_id = $1 ORDER BY name, uid`, farmID)
	if err != nil {
		return nil, interpretError(err, "list controllers")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Controller, error) { return scanController(r) })
}

// UpdateController changes a controller's name, DevEUI and location. Its uid, farm and
// transport are its identity and stay. A new DevEUI forgets the route learned for the old one.
func (s *Store) UpdateController(ctx context.Context, c Controller) (Controller, error) {
	old, err := s.Controller(ctx, c.ID)
	if err != nil {
		return Controller{}, err
	}
	c.UID, c.FarmID, c.Transport = old.UID, old.FarmID, old.Transport
	if err := validateController(&c); err != nil {
		return Controller{}, err
	}
	// A new DevEUI is another device: where the old one was heard says nothing of it.
	return scanController(s.db.QueryRow(ctx, `UPDATE controllers SET name = $2, dev_eui = $3, geom = $4,
			lorawan_class = $5, lorawan_fport = $6,
			lorawan_network = CASE WHEN dev_eui IS NOT DISTINCT FROM $3 THEN lorawan_network END,
			lorawan_route = CASE WHEN dev_eui IS NOT DISTINCT FROM $3 THEN lorawan_route END
		WHERE id = $1 RETURNING `+controllerColumns, c.ID, c.Name, c.DevEUI, c.Location, c.LoRaWANClass, c.LoRaWANFPort))
}

// DeleteController deletes a controller and its valves. One with a valve being watered is not
// deleted (ErrBusy). Its MQTT secret is fieldnodes' to revoke.
func (s *Store) DeleteController(ctx context.Context, id int64) error {
	return s.withTx(ctx, func(t *txn) error {
		if err := t.lockFarmOf(ctx, `SELECT farm_id FROM controllers WHERE id = $1`, id); err != nil {
			return interpretError(err, fmt.Sprintf("controller %d", id))
		}
		if _, err := t.tx.Exec(ctx, `SELECT 1 FROM valves WHERE controller_id = $1 ORDER BY id FOR UPDATE`, id); err != nil {
			return interpretError(err, "lock valves of controller")
		}
		var run int64
		err := t.tx.QueryRow(ctx, `SELECT r.id FROM irrigation_runs r JOIN valves v ON v.id = r.valve_id
			WHERE v.controller_id = $1 AND r.state IN `+liveStates+` LIMIT 1`, id).Scan(&run)
		if err == nil {
			return fmt.Errorf("controller %d has a valve being watered by run %d: %w", id, run, ErrBusy)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return interpretError(err, "controller live run")
		}
		tag, err := t.tx.Exec(ctx, `DELETE FROM controllers WHERE id = $1`, id)
		if err != nil {
			return interpretError(err, "delete controller")
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("controller %d: %w", id, ErrNotFound)
		}
		return nil
	})
}

// controllerRef is what handling a controller's report needs of it.
type controllerRef struct {
	id     int64
	farmID int64
}

func (t *txn) controllerByUID(ctx context.Context, uid string) (controllerRef, error) {
	var c controllerRef
	err := t.tx.QueryRow(ctx, `SELECT id, farm_id FROM controllers WHERE uid = $1`, uid).Scan(&c.id, &c.farmID)
	return c, interpretError(err, fmt.Sprintf("controller %q", uid))
}

// controllerSeen records a report: when it arrived, and the flow and totaliser when given.
func (t *txn) controllerSeen(ctx context.Context, id int64, at time.Time, flowLPM, volumeL *float64) error {
	_, err := t.tx.Exec(ctx, `UPDATE controllers SET last_seen_at = GREATEST(last_seen_at, $2),
		flow_lpm = COALESCE($3, flow_lpm), volume_l = COALESCE($4, volume_l) WHERE id = $1`, id, at, flowLPM, volumeL)
	return interpretError(err, "controller seen")
}
