// Package repo finds the repository root (the directory of the root go.mod).
package repo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Module is the root module's path.
const Module = "github.com/go-service/go-service"

var (
	once sync.Once
	root string
	err  error
)

// Root returns the repository root, found by walking up from the working directory.
func Root() (string, error) {
	once.Do(func() {
		dir, e := os.Getwd()
		if e != nil {
			err = e
			return
		}
		for {
			data, e := os.ReadFile(filepath.Join(dir, "go.mod"))
			if e == nil && strings.HasPrefix(string(data), "module "+Module+"\n") {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				err = fmt.Errorf("no go.mod of %s above the working directory", Module)
				return
			}
			dir = parent
		}
	})
	return root, err
}
