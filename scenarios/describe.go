package scenarios

import (
	"fmt"
	"strings"
)

// describe is a step's one-line action.
func describe(st *Step) string {
	switch {
	case st.Start != "":
		return "start " + st.Start
	case st.Stop != "":
		return "stop " + st.Stop
	case st.Kill != "":
		return "kill -9 " + st.Kill
	case st.Restart != "":
		return "restart " + st.Restart
	case st.Impair != nil:
		d := fmt.Sprintf("impair %s: %s", st.Impair.Tunnel, st.Impair.Fault)
		if st.Impair.Fault == "loss" {
			d += fmt.Sprintf(" %g%%", st.Impair.Percent)
		}
		return d
	case st.Restore != "":
		return "restore " + st.Restore
	case st.WAN != nil:
		return describeWAN(st.WAN)
	case st.Flow != nil:
		f := st.Flow
		return fmt.Sprintf("flow %s: %s %s -> %s", f.Name, f.Proto, f.From, f.To)
	case len(st.StopFlow.Items) > 0:
		return "stop flow " + strings.Join(st.StopFlow.Items, ", ")
	case st.IKEImpair != nil:
		return fmt.Sprintf("ike impair %s: %s", st.IKEImpair.Gateway, strings.Join(st.IKEImpair.Spec.Items, ", "))
	case st.Flood != nil:
		return fmt.Sprintf("flood %s with %d first messages", st.Flood.Tunnel, st.Flood.Count)
	case st.Rekey != nil:
		return fmt.Sprintf("rekey %s %s phase %d", st.Rekey.Gateway, st.Rekey.Tunnel, st.Rekey.Phase)
	case st.Initiate != nil:
		return fmt.Sprintf("initiate %s %s", st.Initiate.Gateway, st.Initiate.Tunnel)
	case st.Terminate != nil:
		return fmt.Sprintf("terminate %s %s", st.Terminate.Gateway, st.Terminate.Tunnel)
	case st.BGP != nil:
		b := st.BGP
		var parts []string
		for _, a := range b.Advertise.Items {
			parts = append(parts, "advertise "+a)
		}
		for _, a := range b.Withdraw.Items {
			parts = append(parts, "withdraw "+a)
		}
		if b.Prepend != nil {
			parts = append(parts, fmt.Sprintf("prepend %d on %s", *b.Prepend, b.Tunnel))
		}
		if b.MED != nil {
			parts = append(parts, fmt.Sprintf("MED %d on %s", *b.MED, b.Tunnel))
		}
		return "bgp " + b.Gateway + ": " + strings.Join(parts, ", ")
	case len(st.Wait.Items) > 0:
		return "wait " + strings.Join(st.Wait.Items, " and ")
	case st.Sleep > 0:
		return "sleep " + st.Sleep.D().String()
	case len(st.Assert.Items) > 0:
		return "assert " + strings.Join(st.Assert.Items, "; ")
	}
	return "?"
}
