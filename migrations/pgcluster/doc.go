// Package pgcluster runs a private PostgreSQL+PostGIS cluster from the machine's PostgreSQL
// binaries: initdb on first start, pg_ctl start/stop, a fresh free port each start, loopback only,
// no Unix socket. When started as root it runs the server as an unprivileged user (postgres
// refuses root) and, if that user cannot reach the requested directory (say under /root), keeps
// the cluster under /var/lib/aghali instead and says so. A cluster left running by a process that
// was killed is adopted on the next start.
package pgcluster
