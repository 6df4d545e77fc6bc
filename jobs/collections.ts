// The collections Agenda keeps jobs in (jobs/agenda.ts), for the handlers that prune them.
export const JOBS_COLLECTION = 'agendaJobs';
/** One document per job lifecycle event (start, success, fail, retry), with the node that ran it. */
export const JOB_LOG_COLLECTION = 'agenda_logs';
