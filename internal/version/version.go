// Package version holds the build's version, stamped at link time:
//
//	go build -ldflags "-X github.com/stateguard/stateguard/internal/version.Version=v0.1.0"
package version

import "runtime/debug"

// Version is the release version; "" falls back to the module build info.
var Version = ""

// Get returns the version to print: the stamped one, else the module's, else "devel".
func Get() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "devel"
}
