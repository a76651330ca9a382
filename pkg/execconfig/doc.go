// Package execconfig reads Mage's k8s_executor_config / executor_config
// from a project's metadata.yaml files and a request, renders its templates,
// deep-merges the levels and validates the result, naming every bad field.
package execconfig
