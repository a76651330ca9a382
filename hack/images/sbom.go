package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// SBOM is an SPDX 2.3 document for one platform's image: each binary, the
// Go modules compiled into it (as the binary itself records them) and the
// Go toolchain.
func SBOM(name, version string, p v1.Platform, bins []string) (map[string]any, error) {
	var packages []map[string]any
	var relationships []map[string]string
	seen := map[string]bool{}
	add := func(id, pkgName, pkgVersion, purl, supplier string) {
		if seen[id] {
			return
		}
		seen[id] = true
		pkg := map[string]any{
			"SPDXID": id, "name": pkgName, "versionInfo": pkgVersion,
			"downloadLocation": "NOASSERTION", "filesAnalyzed": false, "supplier": supplier,
		}
		if purl != "" {
			pkg["externalRefs"] = []map[string]string{{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}}
		}
		packages = append(packages, pkg)
	}
	for _, bin := range bins {
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("read the build info of %s: %w", bin, err)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		binID := "SPDXRef-Binary-" + filepath.Base(bin)
		add(binID, filepath.Base(bin), version, "", "Organization: magekube")
		packages[len(packages)-1]["checksums"] = []map[string]string{{"algorithm": "SHA256", "checksumValue": hex.EncodeToString(sum[:])}}
		relationships = append(relationships, map[string]string{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": binID})
		goID := "SPDXRef-Go-" + spdxID(info.GoVersion)
		add(goID, "go", strings.TrimPrefix(info.GoVersion, "go"), "pkg:golang/stdlib@"+info.GoVersion, "Organization: Go")
		relationships = append(relationships, map[string]string{"spdxElementId": binID, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": goID})
		deps := info.Deps
		sort.Slice(deps, func(i, j int) bool { return deps[i].Path < deps[j].Path })
		for _, d := range deps {
			if d.Replace != nil {
				d = d.Replace
			}
			id := "SPDXRef-Module-" + spdxID(d.Path+"-"+d.Version)
			add(id, d.Path, d.Version, "pkg:golang/"+d.Path+"@"+d.Version, "NOASSERTION")
			relationships = append(relationships, map[string]string{"spdxElementId": binID, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": id})
		}
	}
	return map[string]any{
		"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
		"name":              fmt.Sprintf("%s:%s %s/%s", name, version, p.OS, p.Architecture),
		"documentNamespace": fmt.Sprintf("https://github.com/magekube/magekube/sbom/%s/%s/%s-%s", filepath.Base(name), version, p.OS, p.Architecture),
		"creationInfo":      map[string]any{"created": "1970-01-01T00:00:00Z", "creators": []string{"Tool: magekube hack/images"}},
		"packages":          packages,
		"relationships":     relationships,
	}, nil
}

// spdxID keeps the letters, digits, dots and dashes SPDX ids allow.
func spdxID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
