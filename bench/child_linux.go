package main

import "syscall"

// childSysProcAttr makes the kernel kill the server child if the harness
// dies without stopping it.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
