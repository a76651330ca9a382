package execconfig

// Merge deep-merges src over dst and returns dst: maps merge by key, and
// for anything else (scalars, lists) src wins. Mage merges only the top
// level, which drops a whole pod: section when a block sets one pod: key.
func Merge(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, sv := range src {
		sm, sIsMap := sv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		if sIsMap && dIsMap {
			dst[k] = Merge(dm, sm)
			continue
		}
		dst[k] = deepCopy(sv)
	}
	return dst
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
