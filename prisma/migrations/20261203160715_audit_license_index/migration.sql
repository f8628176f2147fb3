-- A license's history (auditEvents(licenseId), newest first, on the console's license page): without
-- this index it was a scan of the tenant's whole log, which every heartbeat makes longer.
-- CreateIndex
CREATE INDEX "AuditEvent_licenseId_id_idx" ON "AuditEvent"("licenseId", "id");
