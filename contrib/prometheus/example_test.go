package prometheus_test

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	rpc "github.com/seedrpc/rpc"
	rpcprom "github.com/seedrpc/rpc/contrib/prometheus"
)

// A server and a client that both count their calls.
func Example() {
	reg := prometheus.NewRegistry() // or prometheus.DefaultRegisterer
	sm, cm := rpcprom.NewServerMetrics(), rpcprom.NewClientMetrics()
	reg.MustRegister(sm, cm)

	srv := rpc.NewServer(rpc.WithServerInterceptor(sm.Interceptor()))
	if err := srv.Register(newCalc()); err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Close()
	cli, err := rpc.Dial("tcp", lis.Addr().String(), rpc.WithClientInterceptor(cm.Interceptor()))
	if err != nil {
		panic(err)
	}
	defer cli.Close()

	var sum int
	_ = cli.Call("Calc.Add", Args{1, 2}, &sum)
	_ = cli.Call("Calc.Add", Args{3, 4}, &sum)
	_ = cli.Call("Calc.Coded", Args{1, 2}, &sum) // returns rpc.Errorf(7, ...)

	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.GetMetric() {
			fmt.Print(mf.GetName())
			for _, lp := range m.GetLabel() {
				fmt.Printf(" %s=%s", lp.GetName(), lp.GetValue())
			}
			fmt.Println(" ", m.GetCounter().GetValue())
		}
	}
	// Output:
	// seedrpc_client_handled_total code=Error method=Coded service=Calc  1
	// seedrpc_client_handled_total code=OK method=Add service=Calc  2
	// seedrpc_server_handled_total code=Error method=Coded service=Calc  1
	// seedrpc_server_handled_total code=OK method=Add service=Calc  2
}
