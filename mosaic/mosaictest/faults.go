package mosaictest

// faultState is one injected fault and its remaining budget.
type faultState struct {
	route Route
	f     Fault
	left  int // remaining firings when f.Count > 0
}

// InjectFault adds a fault for route r (RouteAny matches every route). Faults
// fire in injection order; the first that applies to a request wins. A fault
// with Count fires on the next Count matching calls and is then removed;
// otherwise it fires with Probability (seeded by Options.Seed) forever.
// FaultNotUploaded applies only to finalize, FaultExpired only to storage and
// download routes, FaultLoseRequest and FaultLateRun only to run_agent.
func (s *Server) InjectFault(r Route, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{route: r, f: f, left: f.Count})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func faultApplies(kind FaultKind, route Route) bool {
	switch kind {
	case FaultNotUploaded:
		return route == RouteFinalize
	case FaultExpired:
		return route == RouteStorage || route == RouteDownload
	case FaultLoseRequest, FaultLateRun:
		return route == RouteRunAgent
	}
	return route != RouteUnknown
}

// pickFault returns the fault to apply to one request on route, or nil.
func (s *Server) pickFault(route Route) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, fs := range s.faults {
		if fs.route != RouteAny && fs.route != route {
			continue
		}
		if !faultApplies(fs.f.Kind, route) {
			continue
		}
		if fs.f.Count > 0 {
			fs.left--
			if fs.left <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
			f := fs.f
			return &f
		}
		if fs.f.Probability > 0 && s.rng.Float64() < fs.f.Probability {
			f := fs.f
			return &f
		}
	}
	return nil
}
