//go:build !linux

package load

// readCPU has no pressure stall information outside Linux.
func readCPU() cpuReading { return cpuReading{} }
