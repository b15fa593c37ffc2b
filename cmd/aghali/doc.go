// Command aghali is the Aghali platform in one binary. main is only a composition root: it reads
// the configuration, wires the domain packages together and runs a subcommand.
package main
