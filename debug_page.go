package rpc

import (
	"html/template"
	"strconv"
	"time"
)

// debugPage renders debugInfo as a self-contained page: no scripts, no
// external assets. Rows and figures carry data- attributes and classes so
// that tests and scrapers can find them.
var debugPage = template.Must(template.New("debug").Funcs(template.FuncMap{
	"seconds": func(s float64) string {
		d := time.Duration(s * float64(time.Second))
		switch {
		case d == 0:
			return "–"
		case d < time.Microsecond:
			return d.String()
		case d < time.Millisecond:
			return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + "µs"
		case d < time.Second:
			return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
		}
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	},
	"time": func(t time.Time) string { return t.Format("2006-01-02 15:04:05.000 MST") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>seedrpc server</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
caption { text-align: left; padding: .2em 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; color: #444; }
.bad { color: #b00; font-weight: bold; } .good { color: #080; }
.summary span { margin-right: 2em; }
</style>
</head>
<body>
<h1>seedrpc server</h1>
<p class="summary">
<span>at {{time .Time}}</span>
<span>connections: <b id="connections">{{.Connections}}</b></span>
<span>calls in flight: <b id="in-flight">{{.InFlight}}</b></span>
{{if .ShuttingDown}}<span class="bad" id="shutting-down">shutting down</span>{{end}}
</p>

<h2>Services</h2>
{{if not .Services}}<p>No services registered.</p>{{end}}
{{range $svc := .Services}}
<table class="service" data-service="{{$svc.Name}}">
<caption><b>{{$svc.Name}}</b></caption>
<tr><th>method</th><th>calls</th><th>errors</th><th>p50</th><th>p99</th><th>args</th><th>reply</th></tr>
{{range .Methods}}
<tr data-method="{{$svc.Name}}.{{.Name}}">
<td class="name">{{.Name}}</td>
<td class="num calls">{{.Calls}}</td>
<td class="num errors{{if .Errors}} bad{{end}}">{{.Errors}}</td>
<td class="num p50">{{seconds .P50}}</td>
<td class="num p99">{{seconds .P99}}</td>
<td><code>{{.Args}}</code></td>
<td><code>{{.Reply}}</code></td>
</tr>
{{end}}
</table>
{{end}}

<h2>Registry</h2>
{{with .Registry}}
{{if not .Instances}}<p id="registry-none">Nothing announced (Serve has not started, or the server shut down).</p>{{else}}
<table id="registry">
<tr><th>service</th><th>address</th><th>listed</th><th>last heartbeat</th></tr>
{{range .Instances}}
<tr data-instance="{{.Service}} {{.Addr}}">
<td>{{.Service}}</td><td>{{.Addr}}</td>
<td class="listed">{{if .Listed}}<span class="good">yes</span>{{else}}<span class="bad">no</span>{{end}}{{with .LookupError}} <span class="bad">lookup failed: {{.}}</span>{{end}}</td>
<td class="heartbeat">{{with .LastHeartbeat}}{{time .}}{{else}}–{{end}}{{with .HeartbeatError}} <span class="bad">{{.}}</span>{{end}}</td>
</tr>
{{end}}
</table>
{{end}}
{{else}}<p id="registry-none">No registry (WithRegistry not given).</p>{{end}}

<h2>Connections</h2>
{{if not .Conns}}<p>None.</p>{{else}}
<table id="conns">
<tr><th>remote</th><th>calls in flight</th><th>draining</th></tr>
{{range .Conns}}<tr><td>{{.Remote}}</td><td class="num">{{.InFlight}}</td><td>{{if .Draining}}yes{{end}}</td></tr>
{{end}}
</table>
{{if gt .Connections (len .Conns)}}<p>Showing {{len .Conns}} of {{.Connections}}.</p>{{end}}
{{end}}

<p><a href="?format=json">This page as JSON</a></p>
</body>
</html>
`))
