{{/*
The chart's short name (app.kubernetes.io/name).
*/}}
{{- define "agora.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release fullname: the release name alone when it contains the chart's name,
otherwise "<release>-<name>". At most 43 characters, because it is the default platform
name and the operator names objects after the platform: the longest, the StatefulSet
"<platform>-postgres", must leave room within 52 characters for its pods'
controller-revision-hash label.
*/}}
{{- define "agora.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 43 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "agora.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 43 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 43 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The SocialPlatform's name: platform.name, else the release fullname.
*/}}
{{- define "agora.platformName" -}}
{{- .Values.platform.name | default (include "agora.fullname" .) -}}
{{- end -}}

{{/*
The helm.sh/chart label.
*/}}
{{- define "agora.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels of the chart's own objects.
*/}}
{{- define "agora.labels" -}}
helm.sh/chart: {{ include "agora.chart" . }}
app.kubernetes.io/name: {{ include "agora.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: agora
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
agora.prune: a map without its unset entries, as JSON (read it back with fromJson).
Unset means null, "", or a map or list that is empty once pruned; false and 0 are
values. Lists are kept whole.
*/}}
{{- define "agora.prune" -}}
{{- $out := dict -}}
{{- range $key, $value := . -}}
{{- if kindIs "map" $value -}}
{{- $inner := include "agora.prune" $value | fromJson -}}
{{- if $inner -}}
{{- $_ := set $out $key $inner -}}
{{- end -}}
{{- else if kindIs "slice" $value -}}
{{- if $value -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- else if kindIs "invalid" $value -}}
{{- else if and (kindIs "string" $value) (eq $value "") -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
agora.spec: the SocialPlatform's spec as JSON: platform minus its metadata keys, pruned.
values.schema.json keeps platform's keys to the spec's fields.
*/}}
{{- define "agora.spec" -}}
{{- include "agora.prune" (omit .Values.platform "name" "labels" "annotations") -}}
{{- end -}}

{{/*
agora.validate: fails on a spec the API server would refuse, with the same words as
the CRD's CEL rules and required fields, so that `helm template` and `helm lint` catch
it. Absent fields count with the CRD's defaults (edge.kind Ingress, authMiddleware
Traefik, photo storage a PVC).
*/}}
{{- define "agora.validate" -}}
{{- $spec := . -}}
{{- $edge := $spec.edge | default dict -}}
{{- $kind := $edge.kind | default "Ingress" -}}
{{- $auth := $edge.authMiddleware | default "Traefik" -}}
{{- if and (ne $kind "Ingress") (has $auth (list "Traefik" "Nginx")) -}}
{{- fail "platform.edge: the Traefik and Nginx auth middlewares need edge.kind Ingress" -}}
{{- end -}}
{{- if and (ne $kind "GatewayAPI") (eq $auth "EnvoyGateway") -}}
{{- fail "platform.edge: the EnvoyGateway auth middleware needs edge.kind GatewayAPI" -}}
{{- end -}}
{{- if and (eq $kind "GatewayAPI") (not $edge.gateway) -}}
{{- fail "platform.edge: edge.kind GatewayAPI needs edge.gateway (the parent Gateway)" -}}
{{- end -}}
{{- if and $edge.gateway (not $edge.gateway.name) -}}
{{- fail "platform.edge.gateway.name is required when edge.gateway is set" -}}
{{- end -}}
{{- $database := $spec.database | default dict -}}
{{- if and (eq ($database.mode | default "Managed") "External") (not $database.external) -}}
{{- fail "platform.database: database.mode External needs database.external.secretRef" -}}
{{- end -}}
{{- $storage := dig "photos" "storage" (dict) $spec -}}
{{- if and $storage.pvc $storage.s3 -}}
{{- fail "platform.photos: photos.storage needs exactly one of pvc and s3" -}}
{{- end -}}
{{- with $storage.s3 -}}
{{- if not .bucket -}}
{{- fail "platform.photos.storage.s3.bucket is required with S3 photo storage" -}}
{{- end -}}
{{- if not (dig "secretRef" "name" "" .) -}}
{{- fail "platform.photos.storage.s3.secretRef.name is required with S3 photo storage" -}}
{{- end -}}
{{- end -}}
{{- $photoReplicas := dig "services" "photos" "replicas" 1 $spec | int -}}
{{- if and (gt $photoReplicas 1) (not $storage.s3) -}}
{{- fail "platform: more than one photos replica needs S3 photo storage (a PVC is ReadWriteOnce)" -}}
{{- end -}}
{{- $photoMax := dig "services" "photos" "autoscaling" "maxReplicas" 1 $spec | int -}}
{{- if and (gt $photoMax 1) (not $storage.s3) -}}
{{- fail "platform: autoscaling photos beyond one replica needs S3 photo storage (a PVC is ReadWriteOnce)" -}}
{{- end -}}
{{- range $service, $settings := $spec.services -}}
{{- with $settings.autoscaling -}}
{{- if or (not (hasKey . "minReplicas")) (not (hasKey . "maxReplicas")) -}}
{{- fail (printf "platform.services.%s.autoscaling needs minReplicas and maxReplicas" $service) -}}
{{- end -}}
{{- if gt (int .minReplicas) (int .maxReplicas) -}}
{{- fail (printf "platform.services.%s: autoscaling.minReplicas must not exceed maxReplicas" $service) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
