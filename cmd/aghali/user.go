package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/aghali/aghali/api"
)

// cmdUser manages people from the command line; it is how the first admin of a production
// installation is created (serve never creates a login by itself).
func cmdUser(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(env.Stderr, "Usage: aghali user add --email E --org NAME --role admin|agronomist|farmer|viewer [--name N] [--locale az|ru|en] [--farm ID]... [--password-stdin]")
		return errors.New("user: the only subcommand is add")
	}
	var email, name, org, role, locale string
	var farms farmIDs
	var fromStdin bool
	cfg, err := parseConfig("user add", args[1:], env, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "e-mail, the login name (required)")
		fs.StringVar(&name, "name", "", "display name")
		fs.StringVar(&org, "org", "", "organisation name; created when it does not exist (required)")
		fs.StringVar(&role, "role", "", "admin, agronomist, farmer or viewer (required)")
		fs.StringVar(&locale, "locale", "en", "az, ru or en")
		fs.Var(&farms, "farm", "farm id granted to a farmer or viewer (repeat for several)")
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	})
	if err != nil {
		return err
	}
	if email == "" || org == "" || role == "" {
		return errors.New("user add: --email, --org and --role are required")
	}
	if cfg.DatabaseURL == "" {
		return errors.New("AGHALI_DATABASE_URL (or --database-url) is required")
	}
	password, err := readPassword(fromStdin, env)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, env)
	if err != nil {
		return err
	}
	pool, err := openDatabase(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	orgID, err := api.OrganisationByName(ctx, pool, org)
	if errors.Is(err, api.ErrNotFound) {
		orgID, err = api.CreateOrganisation(ctx, pool, org)
		if err == nil {
			fmt.Fprintf(env.Stdout, "created organisation %q (id %d)\n", org, orgID)
		}
	}
	if err != nil {
		return err
	}
	u, err := api.CreateUser(ctx, pool, api.UserInput{Email: email, Name: name, Password: password, Locale: locale,
		OrgID: orgID, Role: api.Role(role), FarmIDs: farms})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "created user %s (id %d), %s of %q\n", u.Email, u.ID, role, org)
	return nil
}

func readPassword(fromStdin bool, env Env) (string, error) {
	if f, ok := env.Stdin.(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.Stderr, "Password (at least 10 characters): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(env.Stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", err
		}
		if string(b) != string(again) {
			return "", errors.New("the passwords differ")
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(env.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("user add: no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

type farmIDs []int64

func (f *farmIDs) String() string { return fmt.Sprint(*f) }

func (f *farmIDs) Set(s string) error {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("%q is not a farm id", s)
	}
	*f = append(*f, id)
	return nil
}
