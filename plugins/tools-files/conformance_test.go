package main

import (
	"testing"

	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sdktest.Common(t, &filesPlugin{cfg: defaultConfig()}, sdktest.WithConfig(`{"root":`+quote(root)+`}`))
}
