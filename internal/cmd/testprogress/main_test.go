package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestReportPrintsPackagesAndFailures(t *testing.T) {
	var out strings.Builder
	r := newReport(&out)
	for _, line := range []string{
		`{"Action":"start","Package":"a"}`,
		`{"Action":"start","Package":"b"}`,
		`{"Action":"run","Package":"a","Test":"TestOK"}`,
		`{"Action":"output","Package":"a","Test":"TestOK","Output":"quiet\n"}`,
		`{"Action":"pass","Package":"a","Test":"TestOK"}`,
		`{"Action":"output","Package":"b","Test":"TestBad","Output":"    b_test.go:9: boom\n"}`,
		`{"Action":"fail","Package":"b","Test":"TestBad"}`,
		`{"Action":"skip","Package":"b","Test":"TestLater"}`,
		`{"Action":"pass","Package":"a","Elapsed":1.5}`,
		`{"Action":"output","Package":"b","Output":"FAIL\n"}`,
		`{"Action":"output","Package":"b","Output":"FAIL\tb\t2.000s\n"}`,
		`{"Action":"fail","Package":"b","Elapsed":2}`,
		`{"Action":"build-output","ImportPath":"c","Output":"c.go:1: syntax error\n"}`,
	} {
		var ev event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		r.handle(ev)
	}
	if names := r.running(); len(names) != 0 {
		t.Errorf("still running after both finished: %v", names)
	}
	r.summary()
	want := "ok  \ta\t1.500s\n" +
		"    b_test.go:9: boom\n" +
		"FAIL\tb\t2.000s\n" +
		"c.go:1: syntax error\n" +
		"failed packages: b\n" +
		"1 passed, 1 failed, 1 skipped\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
