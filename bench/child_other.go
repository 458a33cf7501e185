//go:build !linux

package main

import "syscall"

// childSysProcAttr returns nil: off Linux the child exits on EOF of its stdin
// when the harness dies.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
