export * from './schema.js'
export * from './read.js'
export * from './write.js'
