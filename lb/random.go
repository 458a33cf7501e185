package lb

// Random returns a Balancer whose pickers choose a uniformly random endpoint
// for each call. Weights are ignored.
func Random() Balancer { return random{} }

// random is the Balancer returned by Random.
type random struct{}

var (
	_ Balancer = random{}
	_ Picker   = (*randomPicker)(nil)
)

// Name returns "random".
func (random) Name() string { return "random" }

// Build returns a picker over eps.
func (random) Build(eps []Endpoint) Picker {
	eps = snapshot(eps)
	if len(eps) == 0 {
		return emptyPicker{}
	}
	return &randomPicker{addrs: addrsOf(eps)}
}

// randomPicker picks uniformly among addrs. It is never modified after Build.
type randomPicker struct {
	addrs []string // not empty
}

// Pick returns a uniformly random endpoint among those not excluded.
func (p *randomPicker) Pick(info PickInfo) (PickResult, error) {
	i := pickUniform(p.addrs, info.Exclude)
	if i < 0 {
		return PickResult{}, ErrNoEndpoints
	}
	return PickResult{Addr: p.addrs[i]}, nil
}
